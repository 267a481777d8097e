"""The namespaces the platform's charts run in, each created with its Pod Security level.

Helm's --create-namespace cannot label a namespace, so the platform applies them first. The level
is the strictest the namespace's pods pass: `privileged` only for the three agents that need host
access (DCGM, node exporter, Fluent Bit), each alone in its namespace; `baseline` for third-party
charts whose pods are not all checked against `restricted` (audit and warn still report those).
`models` (restricted) is the serving charts' own (k8s_charts/models_namespace.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from constructs_lib.addons import envoy_gateway, external_secrets, keda
from constructs_lib.addons.helm import HelmAddon
from contract.kubernetes import LOGGING_NAMESPACE, NODE_MONITORING_NAMESPACE, OBSERVABILITY_NAMESPACE
from observability.scrape_config import GPU_MONITORING_NAMESPACE

PSS_LABEL = "pod-security.kubernetes.io"
PLATFORM_NAMESPACES: dict[str, str] = {
    keda.SOURCE.namespace: "baseline",
    external_secrets.SOURCE.namespace: "baseline",
    OBSERVABILITY_NAMESPACE: "baseline",  # kube-state-metrics, OpenTelemetry collector
    GPU_MONITORING_NAMESPACE: "privileged",  # DCGM exporter: GPU devices and host paths
    NODE_MONITORING_NAMESPACE: "privileged",  # node exporter: host network, PID and root fs
    LOGGING_NAMESPACE: "privileged",  # Fluent Bit: host log paths
}


def namespace_manifest(name: str, level: str) -> dict[str, Any]:
    labels = {f"{PSS_LABEL}/enforce": level}
    # Audit and warn at the level above, so the gap is visible in the audit log and on apply.
    labels.update(
        {
            f"{PSS_LABEL}/{mode}": "restricted" if level != "privileged" else "baseline"
            for mode in ("audit", "warn")
        }
    )
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


class PlatformNamespaces(Construct):
    """Exposes ``manifest`` and ``levels`` (namespace -> Pod Security level); add-ons installed into
    these namespaces depend on it (``precede``).

    :param model_routing: also the Envoy Gateway and AI Gateway namespaces (``ingress.routing: model``).
        Default: False.
    """

    def __init__(
        self, scope: Construct, id_: str, *, cluster: eks.ICluster, model_routing: bool = False
    ) -> None:
        super().__init__(scope, id_)
        self.levels = PLATFORM_NAMESPACES | (envoy_gateway.NAMESPACES if model_routing else {})
        self.manifest = eks.KubernetesManifest(
            self,
            "Manifest",
            cluster=cluster,
            manifest=[namespace_manifest(name, level) for name, level in self.levels.items()],
            overwrite=True,
        )

    def precede(self, addons: Iterable[HelmAddon]) -> None:
        """Every add-on installed into one of these namespaces waits for it to be labelled."""
        for addon in addons:
            if addon.source.namespace in self.levels:
                addon.chart.node.add_dependency(self.manifest)
