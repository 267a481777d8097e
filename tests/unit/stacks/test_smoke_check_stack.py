"""The stage smoke check: inside the VPC, read-only in namespace models, started only via its trigger role."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk.assertions import Template

from app import cdk_json_context
from config import StageConfig
from config.serving import UNKNOWN_MODEL_PROBE
from contract.kubernetes import MODELS_NAMESPACE
from stacks.cluster_stack import ClusterHandle
from stacks.smoke_check_stack import HTTP_CHECK_MINUTES, SmokeCheckStack, trigger_role_path
from tests.synth import SynthResult
from tests.templates import as_list, one, render, role_statements
from tests.variants import routed_by_alb


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


@pytest.fixture(scope="module")
def host_routed_prod(tmp_path_factory: pytest.TempPathFactory) -> tuple[StageConfig, dict[str, Any]]:
    """The smoke check stack alone for prod with host routing, which no shipped stage uses any more:
    a one-stack app on an imported VPC, cluster and secret (seconds), not a whole stage."""
    config = routed_by_alb("prod")
    app = cdk.App(context=cdk_json_context(), outdir=str(tmp_path_factory.mktemp("smoke-host")))
    env = cdk.Environment(account=config.account, region=config.region)
    arn = f"{config.region}:{config.account}"
    imports = cdk.Stack(app, "Imports", env=env)
    zones = config.availability_zones
    vpc = ec2.Vpc.from_vpc_attributes(
        imports,
        "Vpc",
        vpc_id="vpc-0123456789abcdef0",
        vpc_cidr_block=config.network.vpc_cidr,
        availability_zones=zones,
        private_subnet_ids=[f"subnet-0123456789abcdef{index}" for index in range(len(zones))],
        private_subnet_route_table_ids=[f"rtb-0123456789abcdef{index}" for index in range(len(zones))],
    )
    cluster = eks.Cluster.from_cluster_attributes(
        imports, "Cluster", cluster_name=f"llm-inference-{config.name}"
    )
    handle = ClusterHandle(
        cluster=cluster,
        name=cluster.cluster_name,
        security_group_id="sg-0123456789abcdef0",
        gpu_node_groups={},
    )
    key = kms.Key(imports, "LogsKey")  # a real one: a stack needs a resource to synthesise
    secret = secretsmanager.Secret.from_secret_complete_arn(
        imports, "ApiKey", f"arn:aws:secretsmanager:{arn}:secret:api-key-AbCdEf"
    )
    stack = SmokeCheckStack(
        app,
        "SmokeCheck",
        config=config,
        vpc=vpc,
        cluster=handle,
        logs_key=key,
        api_key_secret=secret,
        env=env,
    )
    return config, dict(Template.from_stack(stack).to_json())


def test_host_routing_is_checked_by_host_over_tls(
    host_routed_prod: tuple[StageConfig, dict[str, Any]],
) -> None:
    """No shipped stage routes by host now (dev: header; staging and prod: model), so prod's host-routed
    copy shows the check gets what the script's host path needs (tests/unit/tools/test_smoke_check_scripts.py
    runs that path)."""
    config, template = host_routed_prod
    _, project = one(template, "AWS::CodeBuild::Project")
    spec = json.loads(render(project["Properties"]["Source"]["BuildSpec"]))
    variables = spec["env"]["variables"]
    assert variables["ROUTING_MODE"] == "host"
    assert variables["INGRESS_DOMAIN"] == config.ingress.domain == "llm.example.com"
    assert variables["MODEL_IDS"].split() == [model.id for model in config.models]
    assert not {"SERVED_MODEL_NAMES", "UNKNOWN_MODEL", "GATEWAY_SELECTOR"} & set(variables)
    assert "API_KEY" in spec["env"]["secrets-manager"]


def test_the_stages_and_variants_cover_every_routing_mode(
    synth: SynthResult, host_routed_prod: tuple[StageConfig, dict[str, Any]]
) -> None:
    """So the tests above check model mode (staging, prod) and header (dev) on the shipped stages, and
    host on prod's host-routed copy."""
    modes = {name: config.ingress.routing_mode for name, config in synth.configs.items()}
    assert modes == {"dev": "header", "staging": "model", "prod": "model"}
    assert set(modes.values()) | {host_routed_prod[0].ingress.routing_mode} == {"host", "header", "model"}


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
