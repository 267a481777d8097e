"""The filter's alert group: valid PromQL over the metrics the proxy really exports, and it fires on
a spike but not on a steady block rate (promtool on synthetic series)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import promql_parser
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from filter_proxy.server import Metrics
from observability.guardrail_rules import GROUP, guardrail_alerting_rules
from tests.unit.observability.promtool import promtool

RUNBOOK = "https://example.com/docs/observability.md"


def _rules() -> list[dict[str, object]]:
    document = guardrail_alerting_rules(runbook_base_url=RUNBOOK)
    assert [group["name"] for group in document["groups"]] == [GROUP]
    return list(document["groups"][0]["rules"])


def _exported_names() -> set[str]:
    metrics = Metrics(CollectorRegistry())
    metrics.interventions.labels("input", "blocked", "content:PROMPT_ATTACK").inc()
    metrics.errors.labels("input").inc()
    text = generate_latest(metrics.registry).decode()
    return {line.split("{", 1)[0].split(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")}


def test_expressions_are_valid_promql_over_exported_metrics() -> None:
    exported = _exported_names()
    for rule in _rules():
        promql_parser.parse(str(rule["expr"]))
        for name in ("llm_guardrail_interventions_total", "llm_guardrail_errors_total"):
            if name in str(rule["expr"]):
                assert name in exported


def test_the_spike_alert_fires_on_a_surge_and_not_on_a_steady_rate(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(guardrail_alerting_rules(runbook_base_url=RUNBOOK)))
    series = (
        'llm_guardrail_interventions_total{namespace="models", model_id="%s", outcome="blocked", '
        'rule="content:PROMPT_ATTACK"}'
    )
    # 'steady': 10 blocks a minute all along; 'surge': 1 a minute, then 60 a minute from minute 60.
    steady = "0+10x120"
    surge = "0+1x60 120+60x60"
    test = {
        "rule_files": [str(rules_file)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": series % "steady", "values": steady},
                    {"series": series % "surge", "values": surge},
                ],
                "alert_rule_test": [
                    {"eval_time": "50m", "alertname": "GuardrailBlocksSpike", "exp_alerts": []},
                    {
                        "eval_time": "85m",
                        "alertname": "GuardrailBlocksSpike",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "namespace": "models",
                                    "model_id": "surge",
                                },
                                "exp_annotations": {
                                    key: value
                                    for key, value in _rules()[0]["annotations"].items()  # type: ignore[attr-defined]
                                    if key != "summary"
                                }
                                | {"summary": "surge: 60 blocked requests per minute"},
                            }
                        ],
                    },
                ],
            }
        ],
    }
    test_file = tmp_path / "test.yaml"
    test_file.write_text(yaml.safe_dump(test))
    result = subprocess.run(  # noqa: S603 (promtool and files this test wrote)
        [promtool(), "test", "rules", str(test_file)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
