"""A pinned Helm chart and the release that installs it through the cluster's kubectl provider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from contract.kubernetes import GPU_MODEL_LABEL, GPU_TAINT_KEY, NODE_GROUP_LABEL, SYSTEM_NODE_GROUP

GPU_TAINT_TOLERATION = {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
"""Tolerates the taint every GPU node group carries (constructs_lib.gpu_node_group)."""
TOLERATE_EVERYTHING = [{"operator": "Exists"}]
"""For per-node agents (logs, node metrics) that must run on every node whatever its taints."""
SYSTEM_NODES = {NODE_GROUP_LABEL: SYSTEM_NODE_GROUP}
"""Controllers run on the on-demand system group, never on (possibly Spot) GPU nodes."""


def gpu_nodes_only() -> dict[str, Any]:
    """Node affinity to nodes that carry the GPU model label, which only GPU node groups have."""
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": GPU_MODEL_LABEL, "operator": "Exists"}]}]
            }
        }
    }


@dataclass(frozen=True)
class HelmSource:
    """Where a chart comes from and the exact version installed (never a range)."""

    chart: str
    repository: str
    version: str
    namespace: str
    release: str


def helm_release(
    scope: Construct,
    id_: str,
    *,
    cluster: eks.ICluster,
    source: HelmSource,
    values: Mapping[str, Any],
    timeout_minutes: int = 10,
) -> eks.HelmChart:
    """Install ``source`` with ``values``; waits for the release so dependants see it ready.

    :param timeout_minutes: how long Helm may wait. Default: 10.
    """
    return eks.HelmChart(
        scope,
        id_,
        cluster=cluster,
        chart=source.chart,
        repository=source.repository,
        version=source.version,
        namespace=source.namespace,
        release=source.release,
        create_namespace=True,
        values=dict(values),
        wait=True,
        timeout=Duration.minutes(timeout_minutes),
    )
