"""Issue #14 item 10: every namespace the platform creates carries Pod Security labels, applied
before the charts that use it; privileged agents are alone in their namespaces."""

from __future__ import annotations

from typing import Any

from constructs_lib.addons import dcgm_exporter, envoy_gateway, fluent_bit, node_exporter
from constructs_lib.addons.namespaces import PLATFORM_NAMESPACES
from tests.synth import SynthResult
from tests.templates import helm_releases, manifests, manifests_by_id

EKS_OWNED = {"kube-system"}
LEVELS = {"privileged", "baseline", "restricted"}


def namespaces(synth: SynthResult, stage: str) -> dict[str, dict[str, Any]]:
    found = {}
    for stack in ("Platform", "Serving"):
        for manifest in manifests(synth.templates[stage][stack]):
            if manifest["kind"] == "Namespace":
                found[manifest["metadata"]["name"]] = manifest
    return found


def test_every_namespace_a_chart_or_manifest_uses_has_pod_security_labels(
    synth: SynthResult, stage: str
) -> None:
    labelled = namespaces(synth, stage)
    used = set()
    for stack in ("Platform", "Serving"):
        template = synth.templates[stage][stack]
        used |= {release["Namespace"] for release in helm_releases(template).values()}
        used |= {
            m["metadata"]["namespace"] for m in manifests(template) if "namespace" in m.get("metadata", {})
        }
    for name in sorted(used - EKS_OWNED):
        labels = labelled[name]["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] in LEVELS, name
        assert labels["pod-security.kubernetes.io/audit"] in LEVELS, name
        assert labels["pod-security.kubernetes.io/warn"] in LEVELS, name
    assert labelled["models"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_only_the_host_agents_namespaces_are_privileged() -> None:
    privileged = {name for name, level in PLATFORM_NAMESPACES.items() if level == "privileged"}
    agents = [dcgm_exporter.SOURCE.namespace, node_exporter.SOURCE.namespace, fluent_bit.SOURCE.namespace]
    assert privileged == set(agents)
    assert len(set(agents)) == 3  # each alone


def test_charts_wait_for_their_labelled_namespace(synth: SynthResult, stage: str) -> None:
    template = synth.templates[stage]["Platform"]
    (namespace_id,) = [
        logical_id
        for logical_id, items in manifests_by_id(template).items()
        if "Namespace" in {item["kind"] for item in items}
    ]
    for chart, release in helm_releases(template).items():
        if release["Namespace"] in PLATFORM_NAMESPACES or release["Namespace"] in envoy_gateway.NAMESPACES:
            assert namespace_id in release["DependsOn"], chart
