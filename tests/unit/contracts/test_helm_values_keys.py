"""Every Helm values key the project sets exists in that chart version's own values.yaml.

A key the chart does not know is silently ignored by Helm: a renamed key after a chart bump turns a
setting off without any error. The facts (constructs_lib/addons/values_keys/<chart>-<version>.json)
are extracted from each pinned chart's values.yaml by tools/helm_values_keys.py, which records the
repository, ref and file it read.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.synth import SynthResult
from tests.templates import helm_releases
from tools.helm_values_keys import FACTS_DIR, SOURCES, facts_file, key_kinds

PASSED_THROUGH = {
    # The chart renders each entry as a --<key>=<value> argument (templates/deployment.yaml ranges
    # over .Values.extraArgs); its values.yaml lists only a few defaults.
    ("cluster-autoscaler", "extraArgs"),
    # The chart merges this over its default collector configuration (values.yaml: "Base collector
    # configuration. Supports templating."); components are the collector's, not the chart's.
    ("opentelemetry-collector", "config"),
    # templates/envoy-gateway-config.yaml merges this over the chart's default EnvoyGateway config
    # and writes it whole into the controller's ConfigMap; its keys are the EnvoyGateway API's.
    ("gateway-helm", "config.envoyGateway"),
}
"""Subtrees a chart passes through as data, where keys the chart does not list are valid."""
EMPTY_VALUES = {"ai-gateway-crds-helm"}
"""Charts whose values file sets nothing (v1.1.0: a licence header only); the project sets no key."""


def unknown_keys(values: Any, kinds: dict[str, str], *, chart: str, prefix: str = "") -> list[str]:
    """Key paths in `values` that the chart's values.yaml does not have."""
    unknown: list[str] = []
    if not isinstance(values, dict):
        return unknown
    for key, value in values.items():
        path = f"{prefix}{key}"
        if (chart, path) in PASSED_THROUGH:
            continue
        kind = kinds.get(path)
        if kind is None:
            unknown.append(path)
        elif kind == "map":
            unknown += unknown_keys(value, kinds, chart=chart, prefix=f"{path}.")
        # free: a pass-through mapping; leaf: whatever the project sets replaces the default.
    return unknown


def _releases(synth: SynthResult, stage: str) -> list[dict[str, Any]]:
    return [
        release
        for template in synth.templates[stage].values()
        for release in helm_releases(template).values()
    ]


def test_every_pinned_chart_has_facts(synth: SynthResult, stage: str) -> None:
    releases = _releases(synth, stage)
    assert releases
    missing = [
        f"{r['Chart']}-{r['Version']}" for r in releases if not facts_file(r["Chart"], r["Version"]).exists()
    ]
    assert missing == [], f"run tools/helm_values_keys.py for {missing}"


def test_every_values_key_exists_in_the_chart(synth: SynthResult, stage: str) -> None:
    problems = {}
    for release in _releases(synth, stage):
        facts = json.loads(facts_file(release["Chart"], release["Version"]).read_text())
        unknown = unknown_keys(release["Values"], facts["keys"], chart=release["Chart"])
        if unknown:
            problems[f"{release['Chart']}-{release['Version']}"] = unknown
    assert problems == {}


def test_the_check_catches_a_misspelt_key() -> None:
    kinds = key_kinds({"image": {"tag": "", "repository": "x"}, "podAnnotations": {}, "extraArgs": {"v": 4}})
    assert unknown_keys({"image": {"tags": "v1"}}, kinds, chart="cluster-autoscaler") == ["image.tags"]
    assert unknown_keys({"podAnnotations": {"a/b": "c"}}, kinds, chart="cluster-autoscaler") == []
    assert unknown_keys({"extraArgs": {"expander": "priority"}}, kinds, chart="cluster-autoscaler") == []
    assert unknown_keys({"extraArgs": {"expander": "priority"}}, kinds, chart="keda") == [
        "extraArgs.expander"
    ]


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: f"{s.chart}-{s.version}")
def test_facts_record_their_source(source: Any) -> None:
    facts = json.loads(facts_file(source.chart, source.version).read_text())
    assert facts["chart"] == source.chart
    assert facts["version"] == source.version
    assert facts["source"]["repository"] == f"https://github.com/{source.repository}"
    assert facts["source"]["ref"] == source.ref
    assert facts["source"]["path"] == source.path
    assert len(facts["source"]["sha256"]) == 64
    assert facts["keys"] or source.chart in EMPTY_VALUES


def test_no_stale_facts() -> None:
    expected = {facts_file(s.chart, s.version).name for s in SOURCES}
    assert {path.name for path in FACTS_DIR.glob("*.json")} == expected
