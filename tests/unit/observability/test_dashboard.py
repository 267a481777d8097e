"""Each stage's Grafana dashboard shows every golden signal per model from metrics that exist."""

from __future__ import annotations

import json

from config import load_stages
from observability.dashboard import grafana_dashboard
from observability.rules import recording_rules
from observability.slo import slo_recording_rules
from tests.unit.observability.metrics import all_exported_metrics, metric_names

GOLDEN_SIGNALS = (
    "Requests per second",
    "Time to first token",
    "Inter-token latency p95",
    "Queue depth",
    "Replicas",
    "GPU utilisation and memory of the model's pods",
    "Spot interruptions (last hour, cluster)",
    "SLO: bad-event ratio (availability)",
    "SLO: bad-event ratio (TTFT over threshold)",
    "End-to-end latency and queue time p95",
    "Preemptions and aborted requests per second",
    "Prefix cache hit rate",
    "Autoscaler: desired, current and max replicas",
    "GPU nodes by node group and capacity type",
    "Unschedulable GPU pods",
    "GPU node-hours (last 24 hours)",
    "Generated tokens per GPU-hour",
)


def _recorded() -> set[str]:
    documents = (recording_rules(), slo_recording_rules(list(load_stages()["prod"].models)))
    return {
        rule["record"] for document in documents for group in document["groups"] for rule in group["rules"]
    }


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    panels = grafana_dashboard(load_stages()["prod"])["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    cells = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in panels]
    assert len(set(cells)) == len(cells)


def test_every_stage_has_the_golden_signals_per_model() -> None:
    for name, config in load_stages().items():
        dashboard = grafana_dashboard(config)
        json.dumps(dashboard)  # serialisable as Grafana's JSON model
        assert dashboard["uid"] == f"llm-inference-{name}"
        titles = [panel["title"] for panel in dashboard["panels"]]
        assert set(GOLDEN_SIGNALS) <= set(titles)
        row = dashboard["panels"][0]
        assert row["type"] == "row"
        assert row["repeat"] == "model_id"
        variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "model_id")
        assert variable["current"]["value"] == [model.id for model in config.models]


def test_panel_queries_parse_and_read_known_metrics() -> None:
    known = all_exported_metrics() | _recorded()
    dashboard = grafana_dashboard(load_stages()["prod"])
    for panel in (panel for panel in dashboard["panels"] if panel["type"] != "row"):
        for target in panel["targets"]:
            names = metric_names(target["expr"].replace("$model_id", ".*"))
            assert names, panel["title"]
            assert names <= known, (panel["title"], names - known)
