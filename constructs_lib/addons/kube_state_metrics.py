"""kube-state-metrics: Deployment, pod and node state as metrics (replicas, readiness, taints, pending)."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from constructs_lib.addons.helm import SYSTEM_NODES, HelmAddon, HelmSource
from contract.kubernetes import (
    APP_NAME_LABEL,
    CAPACITY_TYPE_LABEL,
    GPU_MODEL_LABEL,
    MODEL_ID_LABEL,
    MODEL_VERSION_LABEL,
    NODE_GROUP_LABEL,
    OBSERVABILITY_NAMESPACE,
)
from observability.scrape_config import KUBE_STATE_METRICS_APP

SOURCE = HelmSource(
    chart="kube-state-metrics",
    repository="https://prometheus-community.github.io/helm-charts",
    version="6.4.1",
    namespace=OBSERVABILITY_NAMESPACE,
    release=KUBE_STATE_METRICS_APP,
)
POD_LABELS = (APP_NAME_LABEL, MODEL_ID_LABEL, MODEL_VERSION_LABEL)
NODE_LABELS = (GPU_MODEL_LABEL, NODE_GROUP_LABEL, CAPACITY_TYPE_LABEL)


def values() -> dict[str, Any]:
    return {
        "fullnameOverride": KUBE_STATE_METRICS_APP,
        # Labels are dropped unless listed: rules join pods to models and nodes to GPU groups.
        "metricLabelsAllowlist": [f"pods=[{','.join(POD_LABELS)}]", f"nodes=[{','.join(NODE_LABELS)}]"],
        "nodeSelector": SYSTEM_NODES,
        "prometheus": {"monitor": {"enabled": False}},
    }


class KubeStateMetrics(HelmAddon):
    """Exposes ``chart``."""

    def __init__(self, scope: Construct, id_: str, *, cluster: eks.ICluster) -> None:
        super().__init__(scope, id_, source=SOURCE)
        self._install(cluster=cluster, values=values())
