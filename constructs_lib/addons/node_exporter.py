"""Prometheus node exporter: CPU, memory, disk and network of every node (GPU nodes included)."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from constructs_lib.addons.helm import TOLERATE_EVERYTHING, HelmAddon, HelmSource
from contract.kubernetes import NODE_MONITORING_NAMESPACE
from observability.scrape_config import NODE_EXPORTER_APP

SOURCE = HelmSource(
    chart="prometheus-node-exporter",
    repository="https://prometheus-community.github.io/helm-charts",
    version="4.49.1",
    namespace=NODE_MONITORING_NAMESPACE,
    release=NODE_EXPORTER_APP,
)


def values() -> dict[str, Any]:
    return {
        "fullnameOverride": NODE_EXPORTER_APP,
        "tolerations": TOLERATE_EVERYTHING,
        "prometheus": {"monitor": {"enabled": False}},
        "priorityClassName": "system-node-critical",
    }


class NodeExporter(HelmAddon):
    """Exposes ``chart``."""

    def __init__(self, scope: Construct, id_: str, *, cluster: eks.ICluster) -> None:
        super().__init__(scope, id_, source=SOURCE)
        self._install(cluster=cluster, values=values())
