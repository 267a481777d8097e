"""Cluster Autoscaler: discovers the node groups by tag, prefers Spot GPU groups, scales from zero."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from config.cluster import CapacityType, GpuNodeGroupConfig
from config.kubernetes_releases import RELEASES
from config.platform import ClusterAutoscalerConfig
from constructs_lib.addons.arns import scoped_arn
from constructs_lib.addons.helm import SYSTEM_NODES, HelmAddon, HelmSource
from constructs_lib.gpu_node_group import (
    AUTOSCALER_TAG_PREFIX,
    NODE_GROUPS_REVISION_ANNOTATION,
)
from constructs_lib.nag import acknowledge
from contract.kubernetes import NODE_GROUP_LABEL

SERVICE_ACCOUNT = "cluster-autoscaler"
SOURCE = HelmSource(
    chart="cluster-autoscaler",
    repository="https://kubernetes.github.io/autoscaler",
    version="9.54.0",
    namespace="kube-system",
    release="cluster-autoscaler",
)

SPOT_PRIORITY = 50
ON_DEMAND_PRIORITY = 10
ANY_OTHER_PRIORITY = 1  # the system group: without a pattern the priority expander never picks it
MAX_NODE_PROVISION_TIME = "15m"  # GPU nodes pull multi-GB images; give up on a stuck group after this

BALANCING_IGNORED_LABELS = (
    NODE_GROUP_LABEL,
    "eks.amazonaws.com/nodegroup",
    "eks.amazonaws.com/sourceLaunchTemplateId",
    "eks.amazonaws.com/sourceLaunchTemplateVersion",
)
"""Labels that differ between otherwise identical groups. The capacity-type label is NOT ignored,
so balancing spreads over Spot groups of one shape but never pulls on-demand groups in."""

DESCRIBE_ACTIONS = [
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:DescribeTags",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
]
SCALING_ACTIONS = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]


def discovery_tags(cluster_name: str) -> list[str]:
    return [f"{AUTOSCALER_TAG_PREFIX}/enabled", f"{AUTOSCALER_TAG_PREFIX}/{cluster_name}"]


def priorities(groups: list[GpuNodeGroupConfig], nodegroup_names: Mapping[str, str]) -> dict[int, list[str]]:
    """Priority -> ASG name patterns. Managed node groups name their ASG ``eks-<nodegroup>-<uuid>``."""
    by_priority: dict[int, list[str]] = {}
    for group in groups:
        priority = SPOT_PRIORITY if group.capacity_type is CapacityType.SPOT else ON_DEMAND_PRIORITY
        by_priority.setdefault(priority, []).append(f"^eks-{nodegroup_names[group.name]}-.*")
    by_priority[ANY_OTHER_PRIORITY] = [".*"]
    return dict(sorted(by_priority.items(), reverse=True))


def priorities_document(by_priority: Mapping[int, list[str]]) -> str:
    """The ConfigMap text the priority expander reads (integer keys, which a YAML map of strings
    would not give)."""
    lines = []
    for priority, patterns in by_priority.items():
        lines.append(f"{priority}:")
        lines += [f"  - '{pattern}'" for pattern in patterns]
    return "\n".join(lines) + "\n"


def values(
    *,
    cluster_name: str,
    region: str,
    kubernetes_version: str,
    settings: ClusterAutoscalerConfig,
    priorities_text: str,
    nodegroups_revision: str = "",
) -> dict[str, Any]:
    extra_args: dict[str, Any] = {
        "expander": "priority",
        "balance-similar-node-groups": True,
        "scale-down-unneeded-time": f"{settings.scale_down_unneeded_minutes}m",
        "scale-down-utilization-threshold": settings.scale_down_utilization_threshold,
        # GPU nodes are judged by GPU requests alone (flags.go in the pinned autoscaler release).
        "scale-down-gpu-utilization-threshold": settings.scale_down_gpu_utilization_threshold,
        "scale-down-delay-after-add": f"{settings.scale_down_delay_after_add_minutes}m",
        "scan-interval": f"{settings.scan_interval_seconds}s",
        "max-node-provision-time": MAX_NODE_PROVISION_TIME,
        # Add-on DaemonSets and emptyDir caches must not pin an idle GPU node forever.
        "skip-nodes-with-system-pods": False,
        "skip-nodes-with-local-storage": False,
    }
    # The chart turns `flag_N` keys into repeated `--flag` arguments.
    for index, label in enumerate(BALANCING_IGNORED_LABELS, start=1):
        extra_args[f"balancing-ignore-label_{index}"] = label
    return {
        "cloudProvider": "aws",
        "awsRegion": region,
        "autoDiscovery": {"clusterName": cluster_name, "tags": discovery_tags(cluster_name)},
        "fullnameOverride": "cluster-autoscaler",
        "image": {"tag": RELEASES[kubernetes_version].autoscaler_image_tag},
        "rbac": {"serviceAccount": {"create": True, "name": SERVICE_ACCOUNT}},
        "nodeSelector": SYSTEM_NODES,
        "priorityClassName": "system-cluster-critical",
        "extraArgs": extra_args,
        "expanderPriorities": priorities_text,
        # Changes when a GPU group is replaced, so this release is updated and re-reads the new
        # node-group names (weak cross-stack references are read only when this template changes).
        "podAnnotations": {NODE_GROUPS_REVISION_ANNOTATION: nodegroups_revision},
    }


class ClusterAutoscaler(HelmAddon):
    """Exposes ``chart`` and ``identity`` (the Pod Identity role).

    :param gpu_node_groups: the GPU groups' config and their node groups, by group name.
    :param nodegroups_revision: digest of the groups' replacement keys (``gpu_node_groups_revision``).
        Default: empty.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster: eks.ICluster,
        cluster_name: str,
        kubernetes_version: str,
        settings: ClusterAutoscalerConfig,
        gpu_groups: list[GpuNodeGroupConfig],
        nodegroups: Mapping[str, eks.INodegroup],
        nodegroups_revision: str = "",
    ) -> None:
        super().__init__(scope, id_, source=SOURCE)
        stack = Stack.of(self)
        asg_arn, asg_nag = scoped_arn(
            stack, service="autoscaling", resource="autoScalingGroup:*:autoScalingGroupName/*"
        )
        nodegroup_arn, nodegroup_nag = scoped_arn(
            stack, service="eks", resource=f"nodegroup/{cluster_name}/*/*"
        )
        identity = self._pod_identity(
            cluster_name=cluster.cluster_name,
            service_account=SERVICE_ACCOUNT,
            statements=[
                iam.PolicyStatement(
                    sid="ScaleOnlyThisClustersGroups",
                    actions=SCALING_ACTIONS,
                    resources=[asg_arn],
                    conditions={
                        "StringEquals": {f"aws:ResourceTag/{AUTOSCALER_TAG_PREFIX}/{cluster_name}": "owned"}
                    },
                ),
                iam.PolicyStatement(sid="Discover", actions=DESCRIBE_ACTIONS, resources=["*"]),
                iam.PolicyStatement(
                    sid="ReadNodeGroupShapeForScaleFromZero",
                    actions=["eks:DescribeNodegroup"],
                    resources=[nodegroup_arn],
                ),
            ],
        )
        acknowledge(
            identity.role,
            "AwsSolutions-IAM5[Resource::*]",
            reason="Describe* and GetInstanceTypesFromInstanceRequirements of Auto Scaling and EC2 "
            "support no resource-level permissions; they only read.",
        )
        acknowledge(
            identity.role,
            f"AwsSolutions-IAM5[Resource::{asg_nag}]",
            reason="Auto Scaling group names are generated by EKS; the statement is limited by the "
            "aws:ResourceTag condition to groups tagged as owned by this cluster.",
        )
        acknowledge(
            identity.role,
            f"AwsSolutions-IAM5[Resource::{nodegroup_nag}]",
            reason="Node-group ARNs end in generated names and ids; the ARN is limited to this cluster.",
        )
        names = {name: nodegroup.nodegroup_name for name, nodegroup in nodegroups.items()}
        self._install(
            cluster=cluster,
            values=values(
                cluster_name=cluster_name,
                region=stack.region,
                kubernetes_version=kubernetes_version,
                settings=settings,
                priorities_text=priorities_document(priorities(gpu_groups, names)),
                nodegroups_revision=nodegroups_revision,
            ),
        )
