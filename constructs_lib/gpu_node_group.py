"""A managed node group of GPU instances that the Cluster Autoscaler can scale from zero."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from config.cluster import CapacityType, GpuNodeGroupConfig
from config.gpu_sharing import SharingMode, advertised_resources
from constructs_lib.node_launch_template import NodeLaunchTemplate

GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "true"
NODE_GROUP_LABEL = "llm-inference/node-group"
GPU_MODEL_LABEL = "llm-inference/gpu-model"
GPU_COUNT_LABEL = "llm-inference/gpu-count"
CAPACITY_TYPE_LABEL = "llm-inference/capacity-type"
AUTOSCALER_TAG_PREFIX = "k8s.io/cluster-autoscaler"
# The device plugin's config-manager picks the node's sharing config by this label (k8s-device-plugin
# v0.18.0, cmd/config-manager: DefaultConfigLabel); its value is a key of the chart's config.map.
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"


def node_labels(group: GpuNodeGroupConfig) -> dict[str, str]:
    """Labels every node of the group carries; workloads select GPU groups by these."""
    return {
        **group.labels,
        NODE_GROUP_LABEL: group.name,
        GPU_MODEL_LABEL: group.instance.gpu_model,
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
            self, "Template", disk_size_gib=group.disk_size_gib, volume_key=volume_key
        )
        self.nodegroup = eks.Nodegroup(
            self,
            "Nodegroup",
            cluster=cluster,
            ami_type=eks.NodegroupAmiType.AL2023_X86_64_NVIDIA,
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
