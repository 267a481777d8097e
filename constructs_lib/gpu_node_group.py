"""A managed node group of GPU instances that the Cluster Autoscaler can scale from zero."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from aws_cdk import Annotations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from config.cluster import CapacityType, GpuNodeGroupConfig
from config.gpu_sharing import SharingMode, advertised_resources
from constructs_lib.mig_boot import mig_user_data
from constructs_lib.node_launch_template import NodeLaunchTemplate
from contract.kubernetes import (
    CAPACITY_TYPE_LABEL,
    GPU_COUNT_LABEL,
    GPU_MODEL_LABEL,
    GPU_TAINT_KEY,
    GPU_TAINT_VALUE,
    NODE_GROUP_LABEL,
)

AUTOSCALER_TAG_PREFIX = "k8s.io/cluster-autoscaler"
# The device plugin's config-manager picks the node's sharing config by this label (k8s-device-plugin
# v0.18.0, cmd/config-manager: DefaultConfigLabel); its value is a key of the chart's config.map.
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
"""Cluster Autoscaler's AWS GPULabel: a node with it but no allocatable GPUs yet is still starting
(device plugin not ready), so the autoscaler does not scale up again for the same pods."""


def accelerator(gpu_model: str) -> str:
    """The label value in the autoscaler's naming (``nvidia-a10g``, ``nvidia-tesla-t4``)."""
    return f"nvidia-{gpu_model.lower()}"


GPU_AMI_TYPE = eks.NodegroupAmiType.AL2023_X86_64_NVIDIA
GPU_AMI_TYPE_CFN = "AL2023_x86_64_NVIDIA"
"""GPU_AMI_TYPE as CloudFormation spells it (AWS::EKS::Nodegroup AmiType; the Python enum's value is
the member name). replacement_key keeps the enum's spelling: it only feeds the node-groups revision
hash, which must not change while no group is replaced."""
REPLACEMENT_INPUTS = ("AmiType", "CapacityType", "ClusterName", "InstanceTypes", "NodeRole", "Subnets")
"""The create-only properties of AWS::EKS::Nodegroup (CloudFormation resource schema) that a GPU
group sets, besides its generated NodegroupName: changing any of them replaces the group, and the
replacement gets a new name."""
NODE_GROUPS_REVISION_ANNOTATION = "llm-inference/node-groups-revision"


def replacement_key(
    group: GpuNodeGroupConfig, *, cluster_name: str, availability_zones: list[str], vpc_cidr: str
) -> dict[str, object]:
    """What decides whether a GPU group is replaced, from config (one entry per REPLACEMENT_INPUTS).

    The subnets are the stage's private subnets, so the zones and the VPC range stand for them; the
    node role is the cluster stack's one role, which nothing in config replaces.
    """
    return {
        "AmiType": GPU_AMI_TYPE.value,
        "CapacityType": group.capacity_type.value,
        "ClusterName": cluster_name,
        "InstanceTypes": list(group.instance_types),
        "NodeRole": "cluster-stack-node-role",
        "Subnets": {"zones": list(availability_zones), "vpc_cidr": vpc_cidr},
    }


def node_groups_revision(keys: Iterable[tuple[str, dict[str, object]]]) -> str:
    """A short digest of the groups' replacement keys, by group name.

    Consumers in other stacks read node-group names through weak references (Fn::GetStackOutput),
    which CloudFormation re-reads only when the consumer's template changes. Putting this digest in
    the consumer's template makes a replacement change it, so the consumer is deployed again and
    reads the new name.
    """
    document = json.dumps(sorted(keys, key=lambda item: item[0]), sort_keys=True)
    return hashlib.sha256(document.encode()).hexdigest()[:16]


def node_labels(group: GpuNodeGroupConfig) -> dict[str, str]:
    """Labels every node of the group carries; workloads select GPU groups by these."""
    mig = group.sharing.mode is SharingMode.MIG
    return {
        **group.labels,
        NODE_GROUP_LABEL: group.name,
        GPU_MODEL_LABEL: group.instance.gpu_model,
        # A MIG node never has allocatable nvidia.com/gpu (only nvidia.com/mig-*): with this label the
        # autoscaler would count it as a GPU node still starting, for ever.
        **({} if mig else {ACCELERATOR_LABEL: accelerator(group.instance.gpu_model)}),
        GPU_COUNT_LABEL: str(group.gpus_per_node),
        CAPACITY_TYPE_LABEL: group.capacity_type.value,
        **({DEVICE_PLUGIN_CONFIG_LABEL: group.name} if group.sharing.mode is not SharingMode.NONE else {}),
    }


def autoscaler_tags(group: GpuNodeGroupConfig, *, cluster_name: str) -> dict[str, str]:
    """Auto-discovery tags, plus node-template tags so an empty group can be scaled from zero.

    With zero nodes the autoscaler cannot look at a node to learn its GPUs, labels and taint;
    these tags tell it what a new node would bring.
    """
    tags = {
        f"{AUTOSCALER_TAG_PREFIX}/enabled": "true",
        f"{AUTOSCALER_TAG_PREFIX}/{cluster_name}": "owned",
        f"{AUTOSCALER_TAG_PREFIX}/node-template/taint/{GPU_TAINT_KEY}": f"{GPU_TAINT_VALUE}:NoSchedule",
    }
    # What the device plugin will advertise: time slices or MIG devices on a shared group.
    for resource, count in advertised_resources(group).items():
        tags[f"{AUTOSCALER_TAG_PREFIX}/node-template/resources/{resource}"] = str(count)
    for key, value in node_labels(group).items():
        tags[f"{AUTOSCALER_TAG_PREFIX}/node-template/label/{key}"] = value
    return tags


class GpuNodeGroup(Construct):
    """Managed node group on the AL2023 NVIDIA AMI (driver included), tainted for GPU workloads only.

    Exposes ``nodegroup``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster: eks.ICluster,
        cluster_name: str,
        group: GpuNodeGroupConfig,
        node_role: iam.IRole,
        subnets: ec2.SubnetSelection,
        volume_key: kms.IKey,
    ) -> None:
        super().__init__(scope, id_)
        template = NodeLaunchTemplate(
            self,
            "Template",
            disk_size_gib=group.disk_size_gib,
            volume_key=volume_key,
            # MIG groups only: split the GPUs before kubelet, so the device plugin finds MIG devices.
            user_data=mig_user_data(group),
        )
        self.nodegroup = eks.Nodegroup(
            self,
            "Nodegroup",
            cluster=cluster,
            # No ami_type here: aws-cdk-lib 2.275's Nodegroup checks it against its own list of GPU
            # instance classes (aws-eks-v2/lib/private/nodegroup.js isGpuInstanceType), which has no P5,
            # and refuses the NVIDIA AMI for p5 groups. With a launch template it leaves AmiType unset,
            # so the property is set on the resource below, the same for every GPU group.
            capacity_type=(
                eks.CapacityType.SPOT
                if group.capacity_type is CapacityType.SPOT
                else eks.CapacityType.ON_DEMAND
            ),
            instance_types=[ec2.InstanceType(name) for name in group.instance_types],
            min_size=group.min_size,
            max_size=group.max_size,
            desired_size=group.desired_size,
            launch_template_spec=eks.LaunchTemplateSpec(
                id=template.launch_template.launch_template_id or "",
                version=template.launch_template.latest_version_number,
            ),
            labels=node_labels(group),
            taints=[
                eks.TaintSpec(key=GPU_TAINT_KEY, value=GPU_TAINT_VALUE, effect=eks.TaintEffect.NO_SCHEDULE)
            ],
            tags=autoscaler_tags(group, cluster_name=cluster_name),
            node_role=node_role,
            subnets=subnets,
            enable_node_auto_repair=True,
            max_unavailable=1,
        )
        cfn_nodegroup = self.nodegroup.node.default_child
        assert isinstance(cfn_nodegroup, eks.CfnNodegroup)
        cfn_nodegroup.ami_type = GPU_AMI_TYPE_CFN
        # The warning says GPU groups without an ami_type stay on AL2; this one's AmiType is set just above.
        Annotations.of(self.nodegroup).acknowledge_warning(
            "@aws-cdk/aws-eks:gpuInstancesUseAL2", "AmiType is set on the CfnNodegroup (AL2023 NVIDIA)"
        )
