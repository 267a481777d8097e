"""The per-version chart: pod spec, shutdown order, disruption budget, network policy, autoscaling."""

from __future__ import annotations

from typing import Any

import pytest

from contract.kubernetes import KEDA_AUTHENTICATION, NODE_GROUP_LABEL
from contract.serving import PLACEHOLDERS
from k8s_charts.model_endpoint import DRAIN_SCRIPT, ModelEndpointChart
from k8s_charts.shutdown import PROPAGATION_SECONDS, TEARDOWN_SECONDS
from tests.templates import chart_manifests, of_kind
from tests.unit.charts.helpers import charts_for, stage_config, stage_data

EXPECTED_LABELS = {
    "app.kubernetes.io/name": "vllm",
    "app.kubernetes.io/instance": "llama-3-1-8b-v1",
    "llm-inference/model-id": "llama-3-1-8b",
    "llm-inference/model-version": "v1",
}


@pytest.fixture(scope="module")
def dev_chart() -> ModelEndpointChart:
    return charts_for(stage_config(stage_data())).endpoints["llama-3-1-8b-v1"]


@pytest.fixture(scope="module")
def prod_70b_chart() -> ModelEndpointChart:
    return charts_for(stage_config(stage_data("prod"), "prod")).endpoints["llama-3-1-70b-v1"]


def pod_spec(chart: ModelEndpointChart) -> dict[str, Any]:
    spec: dict[str, Any] = of_kind(chart, "Deployment")["spec"]["template"]["spec"]
    return spec


def container(chart: ModelEndpointChart) -> dict[str, Any]:
    """The vLLM container: the first, and the only one unless the model enables filtering."""
    containers = pod_spec(chart)["containers"]
    assert [c["name"] for c in containers][:1] == ["vllm"]
    result: dict[str, Any] = containers[0]
    return result


def test_every_object_is_in_namespace_models_with_the_contract_labels(dev_chart: ModelEndpointChart) -> None:
    for manifest in chart_manifests(dev_chart):
        assert manifest["metadata"]["namespace"] == "models", manifest["kind"]
        assert manifest["metadata"]["labels"] == EXPECTED_LABELS, manifest["kind"]
        assert manifest["metadata"]["name"] == "llama-3-1-8b-v1", manifest["kind"]


def test_pod_template_carries_exactly_the_contract_labels(dev_chart: ModelEndpointChart) -> None:
    deployment = of_kind(dev_chart, "Deployment")
    assert deployment["spec"]["template"]["metadata"]["labels"] == EXPECTED_LABELS


def test_deployment_has_no_replicas_so_the_autoscaler_owns_them(dev_chart: ModelEndpointChart) -> None:
    assert "replicas" not in of_kind(dev_chart, "Deployment")["spec"]


def test_vllm_image_command_and_port(dev_chart: ModelEndpointChart) -> None:
    main = container(dev_chart)
    assert main["image"] == "${DOCKER_HUB_MIRROR}/vllm/vllm-openai:v0.33.0"  # through the image cache
    assert main["command"] == ["vllm", "serve"]
    assert main["args"][0] == "s3://${MODEL_BUCKET_NAME}/llama-3-1-8b-instruct-awq"
    assert main["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


def test_gpu_requests_equal_limits_and_gpus_per_replica(
    dev_chart: ModelEndpointChart, prod_70b_chart: ModelEndpointChart
) -> None:
    for chart, gpus in ((dev_chart, "1"), (prod_70b_chart, "4")):
        resources = container(chart)["resources"]
        assert resources["requests"]["nvidia.com/gpu"] == gpus
        assert resources["limits"]["nvidia.com/gpu"] == gpus


def test_memory_fits_the_smallest_instance_and_limit_equals_request(dev_chart: ModelEndpointChart) -> None:
    resources = container(dev_chart)["resources"]
    # g5.xlarge has 16 GiB and 4 vCPUs; a pod may take three quarters.
    assert resources["requests"]["memory"] == "12Gi"
    assert resources["limits"]["memory"] == "12Gi"
    assert resources["requests"]["cpu"] == "3"
    assert "cpu" not in resources["limits"]


def test_gpu_toleration_and_node_group_affinity(prod_70b_chart: ModelEndpointChart) -> None:
    spec = pod_spec(prod_70b_chart)
    assert spec["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    ]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {
            "matchExpressions": [
                {
                    "key": NODE_GROUP_LABEL,
                    "operator": "In",
                    "values": ["l40s-x4-spot", "l40s-x4-ondemand"],
                }
            ]
        }
    ]


def test_shm_is_a_size_limited_memory_volume(
    dev_chart: ModelEndpointChart, prod_70b_chart: ModelEndpointChart
) -> None:
    for chart, size in ((dev_chart, "2048Mi"), (prod_70b_chart, "16384Mi")):
        volumes = {volume["name"]: volume for volume in pod_spec(chart)["volumes"]}
        assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": size}
        mounts = {mount["mountPath"]: mount["name"] for mount in container(chart)["volumeMounts"]}
        assert mounts["/dev/shm"] == "dshm"


def test_writable_paths_are_size_limited_empty_dirs(dev_chart: ModelEndpointChart) -> None:
    volumes = {volume["name"]: volume for volume in pod_spec(dev_chart)["volumes"]}
    writable = [mount for mount in container(dev_chart)["volumeMounts"] if not mount.get("readOnly")]
    mounts = {mount["mountPath"]: mount["name"] for mount in writable}
    assert set(mounts) == {"/cache", "/tmp", "/dev/shm"}
    for name in mounts.values():
        assert set(volumes[name]) == {"name", "emptyDir"}
        assert "sizeLimit" in volumes[name]["emptyDir"]
    env = {item["name"]: item.get("value", "") for item in container(dev_chart)["env"]}
    for variable in ("HOME", "HF_HOME", "VLLM_CACHE_ROOT", "TRITON_CACHE_DIR", "XDG_CACHE_HOME"):
        assert env[variable].startswith("/cache"), variable


def test_container_security_context(dev_chart: ModelEndpointChart) -> None:
    context = container(dev_chart)["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] >= 10000
    assert context["runAsGroup"] >= 10000
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}


def test_pod_security_context_and_no_service_account_token(dev_chart: ModelEndpointChart) -> None:
    spec = pod_spec(dev_chart)
    context = spec["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] >= 10000
    assert context["runAsGroup"] >= 10000
    assert context["fsGroup"] >= 10000
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == "llama-3-1-8b-v1"


def test_startup_probe_allows_the_configured_load_time(
    dev_chart: ModelEndpointChart, prod_70b_chart: ModelEndpointChart
) -> None:
    for chart, minutes in ((dev_chart, 15), (prod_70b_chart, 40)):
        probe = container(chart)["startupProbe"]
        assert probe["httpGet"] == {"path": "/health", "port": "http"}
        assert probe["periodSeconds"] * probe["failureThreshold"] == minutes * 60


def test_readiness_and_liveness_probe_health(dev_chart: ModelEndpointChart) -> None:
    main = container(dev_chart)
    for probe in ("readinessProbe", "livenessProbe"):
        assert main[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    # Liveness tolerates a busy engine for a minute before restarting it.
    liveness = main["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


@pytest.mark.parametrize(("chart_name", "max_request"), [("dev_chart", 120), ("prod_70b_chart", 300)])
def test_shutdown_budget_comes_from_max_request_seconds(
    chart_name: str, max_request: int, request: pytest.FixtureRequest
) -> None:
    chart: ModelEndpointChart = request.getfixturevalue(chart_name)
    main = container(chart)
    command = main["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["python3", f"/opt/llm-inference/drain/{DRAIN_SCRIPT.name}"]
    min_wait, deadline = int(_flag(command, "--min-wait")), int(_flag(command, "--deadline"))
    grace = pod_spec(chart)["terminationGracePeriodSeconds"]
    # preStop: ALB propagation first, then in-flight requests get the whole max_request_seconds.
    assert (min_wait, deadline) == (PROPAGATION_SECONDS, PROPAGATION_SECONDS + max_request)
    # vLLM's own drain after SIGTERM gets the same budget (backstop for a failed hook).
    assert _flag(main["args"], "--shutdown-timeout") == str(max_request)
    # The kubelet waits for the hook plus engine teardown before SIGKILL.
    assert grace == deadline + TEARDOWN_SECONDS
    assert min_wait < deadline < grace


def test_drain_script_is_mounted_read_only_from_its_config_map(dev_chart: ModelEndpointChart) -> None:
    config_map = of_kind(dev_chart, "ConfigMap")
    assert config_map["data"] == {DRAIN_SCRIPT.name: DRAIN_SCRIPT.read_text(encoding="utf-8")}
    volume = next(v for v in pod_spec(dev_chart)["volumes"] if v["name"] == "drain")
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    assert volume["configMap"]["defaultMode"] == 0o444
    mount = next(m for m in container(dev_chart)["volumeMounts"] if m["name"] == "drain")
    assert mount == {"name": "drain", "mountPath": "/opt/llm-inference/drain", "readOnly": True}


def test_topology_spread_across_zones_and_hosts(dev_chart: ModelEndpointChart) -> None:
    constraints = pod_spec(dev_chart)["topologySpreadConstraints"]
    assert {item["topologyKey"] for item in constraints} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    for item in constraints:
        assert item["maxSkew"] == 1
        assert item["labelSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "llama-3-1-8b-v1"


def test_pod_disruption_budget(dev_chart: ModelEndpointChart) -> None:
    spec = of_kind(dev_chart, "PodDisruptionBudget")["spec"]
    assert spec["maxUnavailable"] == 1
    assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert spec["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/instance": "llama-3-1-8b-v1",
    }


def test_service_targets_the_named_port(dev_chart: ModelEndpointChart) -> None:
    spec = of_kind(dev_chart, "Service")["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["ports"] == [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]
    assert spec["selector"]["app.kubernetes.io/instance"] == "llama-3-1-8b-v1"


def test_service_account_does_not_mount_a_token(dev_chart: ModelEndpointChart) -> None:
    assert of_kind(dev_chart, "ServiceAccount")["automountServiceAccountToken"] is False


def test_network_policy_allows_only_edge_subnets_and_scraper_in_and_dns_credentials_https_out(
    dev_chart: ModelEndpointChart,
) -> None:
    spec = of_kind(dev_chart, "NetworkPolicy")["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "llama-3-1-8b-v1"
    http = [{"protocol": "TCP", "port": 8000}]
    assert spec["ingress"] == [
        # dev: internal ALB, so only the two edge subnets (10.10.0.0/16, after 2 x /24 and 2 x /19).
        {
            "from": [{"ipBlock": {"cidr": "10.10.96.0/24"}}, {"ipBlock": {"cidr": "10.10.97.0/24"}}],
            "ports": http,
        },
        {
            "from": [{"namespaceSelector": {"matchLabels": {"llm-inference/metrics-scraper": "true"}}}],
            "ports": http,
        },
    ]
    egress_ports = [
        sorted((port["protocol"], port["port"]) for port in rule["ports"]) for rule in spec["egress"]
    ]
    assert egress_ports == [[("TCP", 53), ("UDP", 53)], [("TCP", 80)], [("TCP", 4317)], [("TCP", 443)]]
    assert spec["egress"][0]["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert spec["egress"][1]["to"] == [{"ipBlock": {"cidr": "169.254.170.23/32"}}]
    # OTLP/gRPC only to the observability namespace, where the collector runs.
    assert spec["egress"][2]["to"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}
    ]


def test_scaled_object_follows_the_autoscaling_contract(dev_chart: ModelEndpointChart) -> None:
    scaled = of_kind(dev_chart, "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "llama-3-1-8b-v1",
    }
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 2)
    assert spec["fallback"] == {"failureThreshold": 3, "replicas": 1}
    assert spec["triggers"] == [
        {
            "type": "prometheus",
            "name": "queue-depth",
            "metricType": "AverageValue",
            "metadata": {
                "serverAddress": PLACEHOLDERS.prometheus_query_url,
                "query": 'sum(vllm:num_requests_waiting{namespace="models",model_id="llama-3-1-8b",'
                'model_version="v1"})',
                "threshold": "5",
                "awsRegion": PLACEHOLDERS.region,
                "identityOwner": "operator",
                # KEDA v2.18.1 prometheus_scaler.go: default true returns 0 for an empty result.
                "ignoreNullValues": "false",
            },
            "authenticationRef": {"kind": "ClusterTriggerAuthentication", "name": KEDA_AUTHENTICATION},
        }
    ]


def test_scaled_object_behaviour_comes_from_config(prod_70b_chart: ModelEndpointChart) -> None:
    behavior = of_kind(prod_70b_chart, "ScaledObject")["spec"]["advanced"]["horizontalPodAutoscalerConfig"][
        "behavior"
    ]
    assert behavior["scaleUp"] == {
        "stabilizationWindowSeconds": 30,
        "selectPolicy": "Max",
        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
    }
    assert behavior["scaleDown"] == {
        "stabilizationWindowSeconds": 900,
        "selectPolicy": "Max",
        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}],
    }


def test_kv_cache_trigger_only_when_configured(
    dev_chart: ModelEndpointChart, prod_70b_chart: ModelEndpointChart
) -> None:
    prod_8b = charts_for(stage_config(stage_data("prod"), "prod")).endpoints["llama-3-1-8b-v1"]
    triggers = of_kind(prod_8b, "ScaledObject")["spec"]["triggers"]
    assert [trigger["name"] for trigger in triggers] == ["queue-depth", "kv-cache"]
    kv = triggers[1]
    assert kv["metricType"] == "AverageValue"
    assert kv["metadata"]["threshold"] == "0.8"
    assert kv["metadata"]["query"] == (
        'sum(vllm:kv_cache_usage_perc{namespace="models",model_id="llama-3-1-8b",model_version="v1"})'
    )
    for chart in (dev_chart, prod_70b_chart):
        assert len(of_kind(chart, "ScaledObject")["spec"]["triggers"]) == 1


def test_exactly_one_autoscaler_per_deployment() -> None:
    for stage in ("dev", "staging", "prod"):
        for chart in charts_for(stage_config(stage_data(stage), stage)).endpoints.values():
            kinds = [manifest["kind"] for manifest in chart_manifests(chart)]
            assert kinds.count("ScaledObject") == 1
            assert "HorizontalPodAutoscaler" not in kinds


def test_every_trigger_reports_an_empty_result_as_an_error(prod_70b_chart: ModelEndpointChart) -> None:
    # Empty result -> error -> after failureThreshold polls KEDA applies fallback.replicas.
    for chart in (
        prod_70b_chart,
        charts_for(stage_config(stage_data("prod"), "prod")).endpoints["llama-3-1-8b-v1"],
    ):
        spec = of_kind(chart, "ScaledObject")["spec"]
        assert spec["triggers"], "no triggers"
        for trigger in spec["triggers"]:
            assert trigger["metadata"]["ignoreNullValues"] == "false", trigger["name"]
            assert trigger["metricType"] == "AverageValue"  # KEDA applies fallback only to AverageValue
        assert spec["fallback"]["failureThreshold"] >= 1


def env_of(chart: ModelEndpointChart) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container(chart)["env"] if "value" in item}


def test_server_keep_alive_outlives_the_alb_idle_timeout(dev_chart: ModelEndpointChart) -> None:
    from k8s_charts.model_ingress import IDLE_TIMEOUT_SECONDS, ModelIngressChart

    ingress_chart = charts_for(stage_config(stage_data())).ingress
    assert isinstance(ingress_chart, ModelIngressChart)
    attributes = of_kind(ingress_chart, "Ingress")["metadata"]["annotations"][
        "alb.ingress.kubernetes.io/load-balancer-attributes"
    ]
    idle = int(dict(item.split("=", 1) for item in attributes.split(","))["idle_timeout.timeout_seconds"])
    assert idle == IDLE_TIMEOUT_SECONDS
    # Otherwise vLLM (uvicorn, default 5 s) closes a connection the ALB is about to reuse: a 502.
    assert int(env_of(dev_chart)["VLLM_HTTP_TIMEOUT_KEEP_ALIVE"]) > idle


def test_otlp_traces_go_to_the_collector_over_grpc(dev_chart: ModelEndpointChart) -> None:
    from contract.telemetry import OTLP_GRPC_PORT, OTLP_TRACES_ENDPOINT

    args = container(dev_chart)["args"]
    endpoint = args[args.index("--otlp-traces-endpoint") + 1]
    assert endpoint == OTLP_TRACES_ENDPOINT
    assert endpoint.endswith(f".observability.svc.cluster.local:{OTLP_GRPC_PORT}")
    # The NetworkPolicy lets exactly that port out to the collector's namespace.
    egress = of_kind(dev_chart, "NetworkPolicy")["spec"]["egress"]
    to_collector = [rule for rule in egress if {"protocol": "TCP", "port": OTLP_GRPC_PORT} in rule["ports"]]
    assert len(to_collector) == 1
    assert to_collector[0]["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "observability"
    }
    assert env_of(dev_chart)["OTEL_SERVICE_NAME"] == "llama-3-1-8b-v1"


def test_streamer_host_buffer_is_bounded_by_the_pod_memory_limit(
    dev_chart: ModelEndpointChart, prod_70b_chart: ModelEndpointChart
) -> None:
    for chart, gpus in ((dev_chart, 1), (prod_70b_chart, 4)):
        limit = int(env_of(chart)["RUNAI_STREAMER_MEMORY_LIMIT"])
        memory = int(container(chart)["resources"]["limits"]["memory"].removesuffix("Gi")) * 1024**3
        shm = next(v for v in pod_spec(chart)["volumes"] if v["name"] == "dshm")["emptyDir"]["sizeLimit"]
        shm_bytes = int(shm.removesuffix("Mi")) * 1024**2
        # One buffer per tensor-parallel worker, all of them plus /dev/shm inside the memory limit.
        assert 0 < limit * gpus + shm_bytes < memory
