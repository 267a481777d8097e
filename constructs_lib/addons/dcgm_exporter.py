"""NVIDIA DCGM exporter: per-GPU utilisation, memory and XID errors on every GPU node, on port 9400."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from constructs_lib.addons.helm import GPU_TAINT_TOLERATION, HelmAddon, HelmSource, gpu_nodes_only
from observability.scrape_config import DCGM_EXPORTER_APP, GPU_MONITORING_NAMESPACE

SOURCE = HelmSource(
    chart="dcgm-exporter",
    repository="https://nvidia.github.io/dcgm-exporter/helm-charts",
    version="4.6.0",
    namespace=GPU_MONITORING_NAMESPACE,
    release=DCGM_EXPORTER_APP,
)
METRICS_PORT = 9400


def values() -> dict[str, Any]:
    return {
        "nameOverride": DCGM_EXPORTER_APP,  # the pod label the scraper selects
        "tolerations": [GPU_TAINT_TOLERATION],
        "affinity": gpu_nodes_only(),
        # The AMP scraper finds the pods itself; there is no Prometheus Operator for a ServiceMonitor.
        "serviceMonitor": {"enabled": False},
        "service": {"port": METRICS_PORT},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "priorityClassName": "system-node-critical",
    }


class DcgmExporter(HelmAddon):
    """Exposes ``chart``."""

    def __init__(self, scope: Construct, id_: str, *, cluster: eks.ICluster) -> None:
        super().__init__(scope, id_, source=SOURCE)
        self._install(cluster=cluster, values=values())
