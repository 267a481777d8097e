"""The vendored exporter metric list is itself well formed: each exporter names its sources."""

from __future__ import annotations

import yaml

from tests.unit.observability.metrics import EXPORTED_METRICS_FILE, exported_metrics


def test_every_exporter_lists_sources_and_metrics() -> None:
    document = yaml.safe_load(EXPORTED_METRICS_FILE.read_text())
    for exporter, entry in document["exporters"].items():
        assert entry["sources"], f"{exporter} has no source"
        assert all(source.startswith("https://") for source in entry["sources"])
        assert entry["version"], f"{exporter} has no version"
    assert {"vllm", "dcgm-exporter", "kube-state-metrics"} <= set(document["exporters"])


def test_histograms_expand_to_their_series() -> None:
    vllm = exported_metrics()["vllm"]
    assert "vllm:time_to_first_token_seconds_bucket" in vllm
    assert "vllm:time_to_first_token_seconds" not in vllm
