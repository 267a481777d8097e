"""NetworkPolicy rules the serving pods' policies share (model versions and the model gateway)."""

from __future__ import annotations

from typing import Any

from contract.kubernetes import METRICS_SCRAPER_NAMESPACE_LABEL

Ports = list[dict[str, Any]]

# Name resolution through CoreDNS in kube-system, over UDP and TCP.
DNS_EGRESS: dict[str, Any] = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}


def from_cidrs(cidrs: list[str], ports: Ports) -> dict[str, Any]:
    """Ingress from these address ranges (the ALB's or the scraper's subnets) on these ports."""
    return {"from": [{"ipBlock": {"cidr": cidr}} for cidr in cidrs], "ports": ports}


def from_metrics_collectors(ports: Ports) -> dict[str, Any]:
    """Ingress from an in-cluster collector, in the namespaces the platform labels for it."""
    return {
        "from": [{"namespaceSelector": {"matchLabels": {METRICS_SCRAPER_NAMESPACE_LABEL: "true"}}}],
        "ports": ports,
    }
