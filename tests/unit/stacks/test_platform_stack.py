"""Platform add-ons: charts pinned and configured, roles scoped, Pod Identity bound per service account."""

from __future__ import annotations

import re
from typing import Any

import pytest

from config import StageConfig
from config.cluster import REQUIRED_ADDONS, CapacityType
from contract.kubernetes import KEDA_AUTHENTICATION, NODE_GROUP_LABEL
from contract.telemetry import OTLP_TRACES_ENDPOINT
from tests.synth import SynthResult
from tests.templates import as_list, helm_releases, manifests, one, render, resources, statements

EXPECTED_CHARTS = {
    # chart: (repository, pinned version, namespace)
    "nvidia-device-plugin": ("https://nvidia.github.io/k8s-device-plugin", "0.18.0", "kube-system"),
    "dcgm-exporter": ("https://nvidia.github.io/dcgm-exporter/helm-charts", "4.6.0", "gpu-monitoring"),
    "cluster-autoscaler": ("https://kubernetes.github.io/autoscaler", "9.54.0", "kube-system"),
    "keda": ("https://kedacore.github.io/charts", "2.18.1", "keda"),
    "aws-for-fluent-bit": ("https://aws.github.io/eks-charts", "0.2.0", "logging"),
    "opentelemetry-collector": (
        "https://open-telemetry.github.io/opentelemetry-helm-charts",
        "0.140.0",
        "observability",
    ),
    "kube-state-metrics": ("https://prometheus-community.github.io/helm-charts", "6.4.1", "observability"),
    "prometheus-node-exporter": (
        "https://prometheus-community.github.io/helm-charts",
        "4.49.1",
        "node-monitoring",
    ),
}
# Only in stages with `ingress.routing: model`; Envoy's OCI charts carry a "v" in their versions.
MODEL_ROUTING_CHARTS = {
    "gateway-helm": ("oci://docker.io/envoyproxy/gateway-helm", "v1.8.3", "envoy-gateway-system"),
    "ai-gateway-crds-helm": (
        "oci://docker.io/envoyproxy/ai-gateway-crds-helm",
        "v1.1.0",
        "envoy-ai-gateway-system",
    ),
    "ai-gateway-helm": ("oci://docker.io/envoyproxy/ai-gateway-helm", "v1.1.0", "envoy-ai-gateway-system"),
}
EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+$")
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
GPU_AFFINITY_TERM = {"matchExpressions": [{"key": "llm-inference/gpu-model", "operator": "Exists"}]}
# Which service account each Pod Identity role belongs to, and the chart that creates it.
IDENTITIES = {
    "ClusterAutoscaler": ("kube-system", "cluster-autoscaler"),
    "Keda": ("keda", "keda-operator"),
    "FluentBit": ("logging", "aws-for-fluent-bit"),
    "OtelCollector": ("observability", "otel-collector"),
    "ManagedAddonsEbsCsi": ("kube-system", "ebs-csi-controller-sa"),
}


@pytest.fixture
def template(synth: SynthResult, stage: str) -> dict[str, Any]:
    return synth.templates[stage]["Platform"]


@pytest.fixture
def releases(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return helm_releases(template)


@pytest.fixture
def config(synth: SynthResult, stage: str) -> StageConfig:
    return synth.configs[stage]


def test_every_chart_comes_from_its_repository_at_an_exact_version(
    releases: dict[str, dict[str, Any]], config: StageConfig
) -> None:
    expected = dict(EXPECTED_CHARTS)
    if config.ingress.routing_mode == "model":
        expected |= MODEL_ROUTING_CHARTS
    assert set(releases) == set(expected)
    for chart, (repository, version, namespace) in expected.items():
        release = releases[chart]
        assert release["Repository"] == repository, chart
        assert release["Version"] == version, chart
        assert EXACT_VERSION.match(release["Version"]), chart
        assert release["Namespace"] == namespace, chart
        assert release["Wait"] is True, chart


def test_device_plugin_runs_only_on_gpu_nodes_and_installs_no_driver(
    releases: dict[str, dict[str, Any]],
) -> None:
    values = releases["nvidia-device-plugin"]["Values"]
    assert values["tolerations"] == [GPU_TOLERATION]
    terms = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [GPU_AFFINITY_TERM]
    assert "driver" not in values
    assert values["gfd"] == {"enabled": False}


def test_dcgm_exporter_runs_only_on_gpu_nodes_without_a_service_monitor(
    releases: dict[str, dict[str, Any]],
) -> None:
    values = releases["dcgm-exporter"]["Values"]
    assert values["tolerations"] == [GPU_TOLERATION]
    terms = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [GPU_AFFINITY_TERM]
    assert values["serviceMonitor"] == {"enabled": False}
    assert values["nameOverride"] == "dcgm-exporter"  # the scraper keeps pods with this name


def test_cluster_autoscaler_discovers_this_clusters_groups_at_its_version(
    releases: dict[str, dict[str, Any]], config: StageConfig
) -> None:
    values = releases["cluster-autoscaler"]["Values"]
    name = f"llm-inference-{config.name}"
    assert values["autoDiscovery"] == {
        "clusterName": name,
        "tags": ["k8s.io/cluster-autoscaler/enabled", f"k8s.io/cluster-autoscaler/{name}"],
    }
    assert values["image"]["tag"] == f"v{config.cluster.kubernetes_version}.0"
    assert values["rbac"]["serviceAccount"] == {"create": True, "name": "cluster-autoscaler"}


def test_cluster_autoscaler_scale_down_settings_come_from_config(
    releases: dict[str, dict[str, Any]], config: StageConfig
) -> None:
    args = releases["cluster-autoscaler"]["Values"]["extraArgs"]
    settings = config.cluster_autoscaler
    assert args["expander"] == "priority"
    assert args["balance-similar-node-groups"] is True
    assert args["scale-down-unneeded-time"] == f"{settings.scale_down_unneeded_minutes}m"
    assert args["scale-down-utilization-threshold"] == settings.scale_down_utilization_threshold
    assert args["scale-down-delay-after-add"] == f"{settings.scale_down_delay_after_add_minutes}m"
    assert args["scan-interval"] == f"{settings.scan_interval_seconds}s"
    ignored = {value for key, value in args.items() if key.startswith("balancing-ignore-label")}
    assert NODE_GROUP_LABEL in ignored
    assert "llm-inference/capacity-type" not in ignored  # Spot and on-demand must not balance together


def _priorities(text: str) -> dict[int, list[str]]:
    by_priority: dict[int, list[str]] = {}
    current = 0
    for line in text.splitlines():
        if line.endswith(":"):
            current = int(line[:-1])
            by_priority[current] = []
        else:
            by_priority[current].append(line.strip().removeprefix("- ").strip("'"))
    return by_priority


def test_priority_expander_prefers_spot_gpu_groups_then_on_demand(
    releases: dict[str, dict[str, Any]], config: StageConfig
) -> None:
    by_priority = _priorities(releases["cluster-autoscaler"]["Values"]["expanderPriorities"])
    rank = {pattern: priority for priority, patterns in by_priority.items() for pattern in patterns}
    for group in config.cluster.gpu_node_groups:
        logical = "Gpu" + group.name.replace("-", "")
        (pattern,) = [
            p for p in rank if p.startswith(f"^eks-<Output:PublishOutputFnGetAtt{logical}Nodegroup")
        ]
        # The node group's real name, resolved at deploy time, anchored as EKS names the ASG.
        assert re.fullmatch(r"\^eks-<Output:\w+NodegroupName\w+>-\.\*", pattern), pattern
        spot = group.capacity_type is CapacityType.SPOT
        assert rank[pattern] == (50 if spot else 10), group.name
    assert rank[".*"] < min(rank[p] for p in rank if p != ".*")


def test_cluster_autoscaler_role_scales_only_groups_tagged_for_this_cluster(
    template: dict[str, Any], config: StageConfig
) -> None:
    by_sid = {
        s["Sid"]: s for s in statements(one(template, "AWS::IAM::Role", "ClusterAutoscalerIdentityRole")[1])
    }
    scale = by_sid["ScaleOnlyThisClustersGroups"]
    assert sorted(as_list(scale["Action"])) == [
        "autoscaling:SetDesiredCapacity",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
    ]
    assert scale["Condition"] == {
        "StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/llm-inference-{config.name}": "owned"}
    }
    assert ":autoScalingGroup:*:autoScalingGroupName/*" in render(scale["Resource"])
    describe = by_sid["Discover"]
    assert all(":Describe" in action or ":Get" in action for action in as_list(describe["Action"]))
    nodegroups = by_sid["ReadNodeGroupShapeForScaleFromZero"]
    assert nodegroups["Action"] == "eks:DescribeNodegroup"
    assert render(nodegroups["Resource"]).endswith(f":nodegroup/llm-inference-{config.name}/*/*")


def test_no_add_on_role_allows_a_wildcard_action(template: dict[str, Any]) -> None:
    roles = resources(template, "AWS::IAM::Role")
    assert len(roles) == len(IDENTITIES)
    for logical_id, role in roles.items():
        for statement in statements(role):
            for action in as_list(statement["Action"]):
                assert "*" not in action, f"{logical_id}: {action}"


def test_roles_are_assumable_only_by_pod_identity_for_their_service_account(
    template: dict[str, Any],
) -> None:
    associations = resources(template, "AWS::EKS::PodIdentityAssociation")
    bound = {}
    for association in associations.values():
        properties = association["Properties"]
        role_id = properties["RoleArn"]["Fn::GetAtt"][0]
        bound[role_id] = (properties["Namespace"], properties["ServiceAccount"])
    for prefix, account in IDENTITIES.items():
        (role_id,) = [lid for lid in bound if lid.startswith(f"{prefix}IdentityRole")]
        assert bound[role_id] == account
        trust = resources(template, "AWS::IAM::Role")[role_id]["Properties"]["AssumeRolePolicyDocument"]
        (statement,) = trust["Statement"]
        assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
        assert sorted(statement["Action"]) == ["sts:AssumeRole", "sts:TagSession"]


def test_charts_create_the_service_accounts_their_roles_are_bound_to(
    releases: dict[str, dict[str, Any]],
) -> None:
    assert releases["keda"]["Values"]["serviceAccount"]["operator"]["name"] == IDENTITIES["Keda"][1]
    assert releases["aws-for-fluent-bit"]["Values"]["serviceAccount"]["name"] == IDENTITIES["FluentBit"][1]
    otel = releases["opentelemetry-collector"]["Values"]
    assert otel["serviceAccount"]["name"] == IDENTITIES["OtelCollector"][1]


def test_keda_queries_only_the_stage_workspace(template: dict[str, Any]) -> None:
    (statement,) = statements(one(template, "AWS::IAM::Role", "KedaIdentityRole")[1])
    assert statement["Action"] == "aps:QueryMetrics"
    assert render(statement["Resource"]) == "<Output:PublishOutputFnGetAttWorkspaceArn54313B3F>"


def test_keda_cluster_trigger_authentication_uses_pod_identity(template: dict[str, Any]) -> None:
    (auth,) = [m for m in manifests(template) if m["kind"] == "ClusterTriggerAuthentication"]
    assert auth["apiVersion"] == "keda.sh/v1alpha1"
    assert auth["metadata"]["name"] == KEDA_AUTHENTICATION
    assert auth["spec"] == {"podIdentity": {"provider": "aws"}}
    (resource,) = [
        r
        for lid, r in resources(template, "Custom::AWSCDK-EKS-KubernetesResource").items()
        if lid.startswith("KedaClusterTriggerAuthentication")
    ]
    assert any(dep.startswith("KedaChart") for dep in resource["DependsOn"])  # the CRD comes first


def test_container_logs_go_to_an_encrypted_group_with_configured_retention(
    template: dict[str, Any], releases: dict[str, dict[str, Any]], config: StageConfig
) -> None:
    ((group_id, group),) = resources(template, "AWS::Logs::LogGroup").items()
    assert group["Properties"]["RetentionInDays"] == config.observability.container_log_retention_days
    assert "LogsKey" in render(group["Properties"]["KmsKeyId"])
    logs = releases["aws-for-fluent-bit"]["Values"]["cloudWatchLogs"]
    assert logs["logGroupName"] == f"<Ref:{group_id}>"
    assert logs["autoCreateGroup"] is False
    values = releases["aws-for-fluent-bit"]["Values"]
    assert all(values[output] == {"enabled": False} for output in ("cloudWatch", "firehose", "kinesis"))
    # EKS Pod Identity credentials need image 2.32.5 or later (aws/aws-for-fluent-bit#888); the
    # 3.x line (chart 0.2.0) is built on Fluent Bit 4.2.2, which has them.
    tag = tuple(int(part) for part in values["image"]["tag"].split("."))
    assert tag >= (2, 32, 5)
    (statement,) = statements(one(template, "AWS::IAM::Role", "FluentBitIdentityRole")[1])
    assert {render(r).split(":log-stream")[0] for r in statement["Resource"]} == {f"<GetAtt:{group_id}.Arn>"}


def test_otel_collector_samples_from_config_and_exports_to_xray(
    releases: dict[str, dict[str, Any]], config: StageConfig
) -> None:
    values = releases["opentelemetry-collector"]["Values"]
    collector = values["config"]
    ratio = config.observability.trace_sampling_ratio
    assert collector["processors"]["probabilistic_sampler"]["sampling_percentage"] == pytest.approx(
        ratio * 100
    )
    pipeline = collector["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert "probabilistic_sampler" in pipeline["processors"]
    assert pipeline["exporters"] == ["awsxray"]
    assert collector["exporters"]["awsxray"]["region"] == (config.region or "<Ref:AWS::Region>")
    # The endpoint serving gives vLLM is this release's Service and gRPC port.
    assert f"http://{values['fullnameOverride']}.observability.svc.cluster.local:4317" == OTLP_TRACES_ENDPOINT
    assert collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")


def test_kube_state_metrics_exports_the_labels_the_rules_join_on(releases: dict[str, dict[str, Any]]) -> None:
    allow = releases["kube-state-metrics"]["Values"]["metricLabelsAllowlist"]
    assert "pods=[app.kubernetes.io/name,llm-inference/model-id,llm-inference/model-version]" in allow
    assert any(entry.startswith("nodes=[llm-inference/gpu-model") for entry in allow)


def test_managed_add_ons_are_pinned_from_config(template: dict[str, Any], config: StageConfig) -> None:
    addons = {
        a["Properties"]["AddonName"]: a["Properties"] for a in resources(template, "AWS::EKS::Addon").values()
    }
    assert set(addons) == set(REQUIRED_ADDONS)
    for name, properties in addons.items():
        assert properties["AddonVersion"] == config.cluster.addon_versions[name]
        assert properties["ResolveConflicts"] == "OVERWRITE"


def test_charts_with_aws_roles_wait_for_the_pod_identity_agent(releases: dict[str, dict[str, Any]]) -> None:
    for chart in ("cluster-autoscaler", "keda", "aws-for-fluent-bit", "opentelemetry-collector"):
        depends = releases[chart]["DependsOn"]
        assert any(dep.startswith("ManagedAddonsekspodidentityagent") for dep in depends), chart
        assert any("IdentityAssociation" in dep for dep in depends), chart


def test_the_gateway_controllers_run_redundantly_on_system_nodes_from_the_image_cache(
    releases: dict[str, dict[str, Any]], config: StageConfig, template: dict[str, Any]
) -> None:
    if config.ingress.routing_mode != "model":
        assert not set(MODEL_ROUTING_CHARTS) & set(releases)
        return
    eg = releases["gateway-helm"]["Values"]
    aigw = releases["ai-gateway-helm"]["Values"]["controller"]
    assert eg["deployment"]["replicas"] >= 2
    assert eg["podDisruptionBudget"] == {"minAvailable": 1}
    assert aigw["replicaCount"] >= 2
    assert aigw["podDisruptionBudget"] == {"enabled": True, "minAvailable": 1}
    for node_selector in (eg["deployment"]["pod"]["nodeSelector"], aigw["nodeSelector"]):
        assert node_selector == {"llm-inference/node-group": "system"}
    # The proxy runs beside the Gateway in `models` (the Ingress names its Service there).
    kubernetes = eg["config"]["envoyGateway"]["provider"]["kubernetes"]
    assert kubernetes == {
        "deploy": {"type": "GatewayNamespace"},
        "watch": {"type": "Namespaces", "namespaces": ["models"]},
    }
    images = [
        f"{eg['deployment']['envoyGateway']['image']['repository']}:{eg['deployment']['envoyGateway']['image']['tag']}",
        f"{aigw['image']['repository']}:{aigw['image']['tag']}",
    ]
    for image in images:
        assert "/docker-hub/envoyproxy/" in image, image
        assert image.endswith((":v1.8.3", ":v1.1.0")), image
    namespaces = [
        m
        for m in manifests(template)
        if m["kind"] == "Namespace" and m["metadata"]["name"].startswith("envoy-")
    ]
    assert {m["metadata"]["name"] for m in namespaces} == {"envoy-gateway-system", "envoy-ai-gateway-system"}
    assert all(
        m["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted" for m in namespaces
    )
