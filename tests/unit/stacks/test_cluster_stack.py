"""The EKS cluster and its node groups: private, encrypted, logged, hardened nodes."""

from __future__ import annotations

import json
from typing import Any

from constructs_lib.gpu_node_group import GPU_TAINT_KEY
from tests.synth import SynthResult

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
    return {
        group["Properties"]["Labels"]["llm-inference/node-group"]: group["Properties"]
        for group in groups.values()
    }


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
