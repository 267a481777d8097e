"""The stage smoke check: inside the VPC, read-only in namespace models, started only via its trigger role."""

from __future__ import annotations

import json

from config.serving import UNKNOWN_MODEL_PROBE
from contract.kubernetes import MODELS_NAMESPACE
from stacks.smoke_check_stack import HTTP_CHECK_MINUTES, trigger_role_path
from tests.synth import SynthResult
from tests.templates import as_list, one, render, role_statements


def test_access_entry_is_the_view_policy_scoped_to_models(synth: SynthResult, stage: str) -> None:
    template = synth.templates[stage]["SmokeCheck"]
    _, entry = one(template, "AWS::EKS::AccessEntry")
    properties = entry["Properties"]
    assert properties["PrincipalArn"] == {
        "Fn::GetAtt": [one(template, "AWS::IAM::Role", "ProjectRole")[0], "Arn"]
    }
    (policy,) = properties["AccessPolicies"]
    assert policy["AccessScope"] == {"Type": "namespace", "Namespaces": [MODELS_NAMESPACE]}
    assert json.dumps(policy["PolicyArn"]).endswith(':eks::aws:cluster-access-policy/AmazonEKSViewPolicy"]]}')
    assert properties.get("KubernetesGroups", []) == []  # no group beyond what the view policy maps
    assert f'"StackName": "{stage}-Cluster"' in json.dumps(properties["ClusterName"])


def test_project_runs_in_the_private_subnets_with_narrow_egress(synth: SynthResult, stage: str) -> None:
    template = synth.templates[stage]["SmokeCheck"]
    _, project = one(template, "AWS::CodeBuild::Project")
    vpc_config = project["Properties"]["VpcConfig"]
    subnets = json.dumps(vpc_config["Subnets"])
    assert len(vpc_config["Subnets"]) == len(synth.configs[stage].availability_zones)
    assert "PrivateSubnet" in subnets
    assert "PublicSubnet" not in subnets
    _, group = one(template, "AWS::EC2::SecurityGroup")
    egress = group["Properties"]["SecurityGroupEgress"]
    assert [(rule["FromPort"], rule["ToPort"], rule["IpProtocol"]) for rule in egress] == [
        (443, 443, "tcp"),
        (80, 80, "tcp"),
    ]
    assert egress[0]["CidrIp"] == "0.0.0.0/0"
    assert "CidrBlock" in json.dumps(egress[1]["CidrIp"])  # HTTP only to the VPC's own range


def test_project_runs_the_script_with_the_stages_models(synth: SynthResult, stage: str) -> None:
    template = synth.templates[stage]["SmokeCheck"]
    config = synth.configs[stage]
    _, project = one(template, "AWS::CodeBuild::Project")
    properties = project["Properties"]
    spec = json.loads(render(properties["Source"]["BuildSpec"]))
    assert spec["phases"]["build"]["commands"] == ["bash smoke_check.sh"]
    assert any("sha256sum --check" in command for command in spec["phases"]["install"]["commands"])
    variables = spec["env"]["variables"]
    assert variables["CLUSTER_NAME"] == f"llm-inference-{stage}"
    assert variables["NAMESPACE"] == "models"
    assert variables["MODEL_IDS"].split() == [model.id for model in config.models]
    assert variables["INGRESS_DOMAIN"] == (config.ingress.domain or "")
    assert properties["Source"]["Type"] == "S3"
    assert properties["Environment"]["PrivilegedMode"] is False
    slowest = max(version.startup_timeout_minutes for model in config.models for version in model.versions)
    assert properties["TimeoutInMinutes"] == slowest + HTTP_CHECK_MINUTES
    assert variables["ROLLOUT_TIMEOUT"] == f"{slowest}m"
    assert "EncryptionKey" in properties


def test_project_checks_the_stage_the_way_it_routes(synth: SynthResult, stage: str) -> None:
    """The script follows the routing mode the charts use; in `model` mode it also needs what the gateway
    routes on (each model's served name) and the name no stage can serve."""
    config = synth.configs[stage]
    _, project = one(synth.templates[stage]["SmokeCheck"], "AWS::CodeBuild::Project")
    variables = json.loads(render(project["Properties"]["Source"]["BuildSpec"]))["env"]["variables"]
    assert variables["ROUTING_MODE"] == config.ingress.routing_mode
    if config.ingress.routing_mode == "model":
        assert variables["SERVED_MODEL_NAMES"].split() == [
            model.versions[0].served_model_name for model in config.models
        ]
        assert variables["UNKNOWN_MODEL"] == UNKNOWN_MODEL_PROBE
        assert variables["GATEWAY_SELECTOR"] == (
            "app.kubernetes.io/managed-by=envoy-gateway,app.kubernetes.io/component=proxy,"
            "gateway.envoyproxy.io/owning-gateway-name=model-gateway"
        )
    else:
        assert not {"SERVED_MODEL_NAMES", "UNKNOWN_MODEL", "GATEWAY_SELECTOR"} & set(variables)


def test_the_shipped_stages_cover_every_routing_mode(synth: SynthResult) -> None:
    """So the test above checks model mode (staging) as well as host (prod) and header (dev)."""
    modes = {name: config.ingress.routing_mode for name, config in synth.configs.items()}
    assert set(modes.values()) == {"host", "header", "model"}, modes


def test_project_role_reads_only_its_cluster(synth: SynthResult, stage: str) -> None:
    template = synth.templates[stage]["SmokeCheck"]
    statements = role_statements(template, one(template, "AWS::IAM::Role", "ProjectRole")[0])
    eks_statements = [s for s in statements if any(str(a).startswith("eks:") for a in as_list(s["Action"]))]
    assert len(eks_statements) == 1
    assert eks_statements[0]["Action"] == "eks:DescribeCluster"
    assert "Cluster" in json.dumps(eks_statements[0]["Resource"])
    assert not [
        s for s in statements if "*" in as_list(s["Action"]) or "iam:PassRole" in as_list(s["Action"])
    ]


def test_trigger_role_can_only_start_and_watch_the_check(synth: SynthResult, stage: str) -> None:
    template = synth.templates[stage]["SmokeCheck"]
    role_id = one(template, "AWS::IAM::Role", "TriggerRole")[0]
    role = template["Resources"][role_id]["Properties"]
    assert role["Path"] == trigger_role_path(stage)
    assert role.get("ManagedPolicyArns") is None
    project_id, _ = one(template, "AWS::CodeBuild::Project")
    log_group_id, _ = one(template, "AWS::Logs::LogGroup")
    statements = [
        (sorted(as_list(s["Action"])), s["Resource"])
        for s in role_statements(template, role_id)
        if s["Effect"] == "Allow"  # its one Deny (no buildspec override) is tested in tests/unit/security
    ]
    assert statements == [
        (["codebuild:BatchGetBuilds", "codebuild:StartBuild"], {"Fn::GetAtt": [project_id, "Arn"]}),
        (["logs:GetLogEvents"], {"Fn::GetAtt": [log_group_id, "Arn"]}),
    ]


def test_outputs_feed_the_pipeline_step(synth: SynthResult, stage: str) -> None:
    outputs = synth.templates[stage]["SmokeCheck"]["Outputs"]
    assert set(outputs) >= {"SmokeCheckProjectName", "SmokeCheckTriggerRoleArn"}


def test_cluster_api_admits_the_check_on_443_only(synth: SynthResult, stage: str) -> None:
    """The endpoint is private: without this rule on the cluster security group kubectl times out."""
    template = synth.templates[stage]["SmokeCheck"]
    group_id, _ = one(template, "AWS::EC2::SecurityGroup")
    _, ingress = one(template, "AWS::EC2::SecurityGroupIngress")
    properties = ingress["Properties"]
    assert (properties["IpProtocol"], properties["FromPort"], properties["ToPort"]) == ("tcp", 443, 443)
    assert properties["SourceSecurityGroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    assert "ClusterSecurityGroupId" in json.dumps(properties["GroupId"])
    assert f'"StackName": "{stage}-Cluster"' in json.dumps(properties["GroupId"])
