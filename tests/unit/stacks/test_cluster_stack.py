"""The EKS cluster and its node groups: private, encrypted, logged, hardened nodes."""

from __future__ import annotations

import json
from typing import Any, cast

import aws_cdk as cdk

from constructs_lib.node_volume_key import AUTOSCALING_SERVICE_LINKED_ROLE
from contract.kubernetes import GPU_TAINT_KEY, NODE_GROUP_LABEL
from tests.synth import SynthResult
from tests.templates import as_list, render

CONTROL_PLANE_LOGS = ["api", "audit", "authenticator", "controllerManager", "scheduler"]


def _cluster(synth: SynthResult, stage: str) -> dict[str, Any]:
    clusters = synth.template(stage, "Cluster").find_resources("AWS::EKS::Cluster")
    assert len(clusters) == 1
    properties: dict[str, Any] = next(iter(clusters.values()))["Properties"]
    return properties


def test_kubernetes_version(synth: SynthResult, stage: str) -> None:
    assert _cluster(synth, stage)["Version"] == synth.configs[stage].cluster.kubernetes_version


def test_endpoint_private_unless_stage_lists_cidrs(synth: SynthResult, stage: str) -> None:
    access = _cluster(synth, stage)["ResourcesVpcConfig"]
    cidrs = synth.configs[stage].cluster.public_access_cidrs
    assert access["EndpointPrivateAccess"] is True
    assert access["EndpointPublicAccess"] is bool(cidrs)
    if cidrs:
        assert access["PublicAccessCidrs"] == cidrs


def test_all_five_control_plane_log_types(synth: SynthResult, stage: str) -> None:
    enabled = _cluster(synth, stage)["Logging"]["ClusterLogging"]["EnabledTypes"]
    assert sorted(entry["Type"] for entry in enabled) == sorted(CONTROL_PLANE_LOGS)


def test_secrets_encrypted_with_rotating_customer_key(synth: SynthResult, stage: str) -> None:
    encryption = _cluster(synth, stage)["EncryptionConfig"]
    assert encryption[0]["Resources"] == ["secrets"]
    key_ref = encryption[0]["Provider"]["KeyArn"]["Fn::GetAtt"][0]
    keys = synth.template(stage, "Cluster").find_resources("AWS::KMS::Key")
    assert keys[key_ref]["Properties"]["EnableKeyRotation"] is True


def test_admin_access_entries(synth: SynthResult, stage: str) -> None:
    template = synth.template(stage, "Cluster")
    admins = synth.configs[stage].cluster.admin_principal_arns
    for arn in admins:
        entries = template.find_resources("AWS::EKS::AccessEntry", {"Properties": {"PrincipalArn": arn}})
        assert len(entries) == 1, arn
        (policy,) = next(iter(entries.values()))["Properties"]["AccessPolicies"]
        assert policy["AccessScope"] == {"Type": "cluster"}
        assert "AmazonEKSClusterAdminPolicy" in json.dumps(policy["PolicyArn"])


def _nodegroups(synth: SynthResult, stage: str) -> dict[str, dict[str, Any]]:
    groups = synth.template(stage, "Cluster").find_resources("AWS::EKS::Nodegroup")
    return {group["Properties"]["Labels"][NODE_GROUP_LABEL]: group["Properties"] for group in groups.values()}


def test_one_managed_group_per_configured_gpu_group_plus_system(synth: SynthResult, stage: str) -> None:
    expected = {group.name for group in synth.configs[stage].cluster.gpu_node_groups} | {"system"}
    assert set(_nodegroups(synth, stage)) == expected


def test_gpu_groups_shape(synth: SynthResult, stage: str) -> None:
    nodegroups = _nodegroups(synth, stage)
    for group in synth.configs[stage].cluster.gpu_node_groups:
        props = nodegroups[group.name]
        assert props["AmiType"] == "AL2023_x86_64_NVIDIA"
        assert props["CapacityType"] == group.capacity_type.value.upper().replace("-", "_")
        assert props["InstanceTypes"] == group.instance_types
        assert props["ScalingConfig"] == {
            "MinSize": group.min_size,
            "MaxSize": group.max_size,
            "DesiredSize": group.desired_size,
        }
        assert props["Taints"] == [{"Key": GPU_TAINT_KEY, "Value": "true", "Effect": "NO_SCHEDULE"}]
        assert props["Labels"]["llm-inference/gpu-model"] == group.instance.gpu_model
        assert props["Labels"]["llm-inference/capacity-type"] == group.capacity_type.value
        assert props["NodeRepairConfig"] == {"Enabled": True}


def test_gpu_groups_carry_autoscaler_discovery_and_scale_from_zero_tags(
    synth: SynthResult, stage: str
) -> None:
    cluster_name = f"llm-inference-{stage}"
    nodegroups = _nodegroups(synth, stage)
    for group in synth.configs[stage].cluster.gpu_node_groups:
        tags = nodegroups[group.name]["Tags"]
        assert tags["k8s.io/cluster-autoscaler/enabled"] == "true"
        assert tags[f"k8s.io/cluster-autoscaler/{cluster_name}"] == "owned"
        prefix = "k8s.io/cluster-autoscaler/node-template"
        assert tags[f"{prefix}/resources/nvidia.com/gpu"] == str(group.gpus_per_node)
        assert tags[f"{prefix}/taint/nvidia.com/gpu"] == "true:NoSchedule"
        assert tags[f"{prefix}/label/llm-inference/node-group"] == group.name


def test_every_launch_template_requires_imdsv2_hop_limit_one_and_encrypted_gp3(
    synth: SynthResult, stage: str
) -> None:
    template = synth.template(stage, "Cluster")
    launch_templates = template.find_resources("AWS::EC2::LaunchTemplate")
    # one per GPU group plus the system group, each used by a node group
    assert len(launch_templates) == len(synth.configs[stage].cluster.gpu_node_groups) + 1
    for launch_template in launch_templates.values():
        data = launch_template["Properties"]["LaunchTemplateData"]
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
        (device,) = data["BlockDeviceMappings"]
        assert device["Ebs"]["Encrypted"] is True
        assert device["Ebs"]["VolumeType"] == "gp3"
    for props in _nodegroups(synth, stage).values():
        assert "LaunchTemplate" in props
        assert "DiskSize" not in props


def test_gpu_root_volume_size_from_config(synth: SynthResult, stage: str) -> None:
    template = synth.template(stage, "Cluster")
    sizes = sorted(
        lt["Properties"]["LaunchTemplateData"]["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"]
        for lt in template.find_resources("AWS::EC2::LaunchTemplate").values()
    )
    config = synth.configs[stage].cluster
    expected = sorted(
        [group.disk_size_gib for group in config.gpu_node_groups] + [config.system_node_group.disk_size_gib]
    )
    assert sizes == expected


def test_nodes_run_in_private_subnets(synth: SynthResult, stage: str) -> None:
    for props in _nodegroups(synth, stage).values():
        for subnet in props["Subnets"]:
            assert "PrivateSubnet" in str(subnet)


# The node volume key ----------------------------------------------------------------------------


def _node_volume_key_id(synth: SynthResult, stage: str) -> str:
    key = synth.stages[stage].cluster.node_volume_key
    stack = cdk.Stack.of(key)
    return str(stack.resolve(stack.get_logical_id(cast(cdk.CfnElement, key.node.default_child))))


def _node_volume_key(synth: SynthResult, stage: str) -> dict[str, Any]:
    key: dict[str, Any] = synth.templates[stage]["Cluster"]["Resources"][_node_volume_key_id(synth, stage)]
    assert key["Type"] == "AWS::KMS::Key"
    return key


def _account(synth: SynthResult, stage: str) -> str:
    return synth.configs[stage].account or "<Ref:AWS::AccountId>"


def test_every_root_volume_is_encrypted_gp3_with_exactly_the_node_volume_key(
    synth: SynthResult, stage: str
) -> None:
    key_id = _node_volume_key_id(synth, stage)
    assert key_id != _cluster(synth, stage)["EncryptionConfig"][0]["Provider"]["KeyArn"]["Fn::GetAtt"][0]
    launch_templates = synth.template(stage, "Cluster").find_resources("AWS::EC2::LaunchTemplate")
    assert len(launch_templates) == len(synth.configs[stage].cluster.gpu_node_groups) + 1
    for launch_template in launch_templates.values():
        (device,) = launch_template["Properties"]["LaunchTemplateData"]["BlockDeviceMappings"]
        assert device["Ebs"]["Encrypted"] is True
        assert device["Ebs"]["VolumeType"] == "gp3"
        assert device["Ebs"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_node_volume_key_rotates_and_is_retained(synth: SynthResult, stage: str) -> None:
    key = _node_volume_key(synth, stage)
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["Properties"]["PendingWindowInDays"] == 30
    assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain"


def test_node_volume_key_lets_the_autoscaling_role_launch_encrypted_volumes(
    synth: SynthResult, stage: str
) -> None:
    """The two statements of the EC2 Auto Scaling guide's key policy for encrypted volumes."""
    statements = _node_volume_key(synth, stage)["Properties"]["KeyPolicy"]["Statement"]
    role_arn = f"arn:aws:iam::{_account(synth, stage)}:role/{AUTOSCALING_SERVICE_LINKED_ROLE}"
    for_role = {s["Sid"]: s for s in statements if render(s["Principal"].get("AWS", "")) == role_arn}
    assert set(for_role) == {"AutoScalingUseOfTheKey", "AutoScalingGrantsForAwsResources"}
    use, grants = for_role["AutoScalingUseOfTheKey"], for_role["AutoScalingGrantsForAwsResources"]
    assert sorted(as_list(use["Action"])) == sorted(
        ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    )
    assert (use["Effect"], use["Resource"], "Condition" in use) == ("Allow", "*", False)
    assert as_list(grants["Action"]) == ["kms:CreateGrant"]
    assert (grants["Effect"], grants["Resource"]) == ("Allow", "*")
    assert grants["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": True}}
    # Besides the role, only the account's default statement (access delegated to IAM).
    others = [s for s in statements if s not in for_role.values()]
    assert [render(s["Principal"]["AWS"]) for s in others] == [f"arn:aws:iam::{_account(synth, stage)}:root"]


def _allow_statements(value: Any) -> list[dict[str, Any]]:
    """Every Allow statement anywhere in a resource (key policies, inline and managed policies)."""
    if isinstance(value, list):
        return [statement for item in value for statement in _allow_statements(item)]
    if not isinstance(value, dict):
        return []
    own = [value] if value.get("Effect") == "Allow" and "Action" in value else []
    return own + [statement for item in value.values() for statement in _allow_statements(item)]


def test_only_the_account_root_of_each_key_policy_holds_kms_wildcards(synth: SynthResult, stage: str) -> None:
    """Neither the node volume key nor anything else grants ``kms:*`` beyond CDK's default statement."""
    root = f"arn:aws:iam::{_account(synth, stage)}:root"
    for stack, template in synth.templates[stage].items():
        for logical_id, resource in template["Resources"].items():
            for statement in _allow_statements(resource.get("Properties", {})):
                if not {"kms:*", "*"} & set(as_list(statement["Action"])):
                    continue
                assert resource["Type"] == "AWS::KMS::Key", (stack, logical_id, statement)
                assert render(statement["Principal"]["AWS"]) == root, (stack, logical_id, statement)
