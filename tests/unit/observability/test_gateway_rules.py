"""The `model` routing alert: valid PromQL, fires when a tenth of requests fail, not at 1% or when idle
(promtool on synthetic Envoy series)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import promql_parser
import yaml

from observability.gateway_rules import gateway_alerting_rules
from observability.scrape_config import gateway_job
from tests.unit.observability.promtool import promtool
from tests.unit.observability.test_docs import DOC

RUNBOOK = "https://example.com/docs/observability.md"


def test_the_expression_parses_and_reads_the_scraped_job() -> None:
    (rule,) = gateway_alerting_rules(runbook_base_url=RUNBOOK)["groups"][0]["rules"]
    promql_parser.parse(rule["expr"])
    assert f'job="{gateway_job()["job_name"]}"' in rule["expr"]
    assert gateway_job()["metrics_path"] == "/stats/prometheus"


def test_the_alert_fires_on_a_tenth_of_5xx_and_not_on_one_percent(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(gateway_alerting_rules(runbook_base_url=RUNBOOK)))
    series = (
        'envoy_http_downstream_rq_xx{namespace="models", job="model-gateway", envoy_response_code_class="%s"}'
    )
    (rule,) = gateway_alerting_rules(runbook_base_url=RUNBOOK)["groups"][0]["rules"]

    def case(
        ok_per_minute: int, failed_per_minute: int, expected: list[dict[str, object]]
    ) -> dict[str, object]:
        return {
            "interval": "1m",
            "input_series": [
                {"series": series % "2", "values": f"0+{ok_per_minute}x30"},
                {"series": series % "5", "values": f"0+{failed_per_minute}x30"},
            ],
            "alert_rule_test": [{"eval_time": "20m", "alertname": "ModelGateway5xx", "exp_alerts": expected}],
        }

    firing = {
        "exp_labels": {"severity": "critical", "namespace": "models"},
        "exp_annotations": rule["annotations"]
        | {"summary": "Model gateway answers 9.091% of requests with a 5xx"},
    }
    test = {
        "rule_files": [str(rules_file)],
        "evaluation_interval": "1m",
        "tests": [
            case(600, 60, [firing]),  # 9% fails
            case(600, 6, []),  # 1%
            case(0, 1, []),  # everything fails, but one request a minute: under the traffic guard
        ],
    }
    test_file = tmp_path / "test.yaml"
    test_file.write_text(yaml.safe_dump(test))
    result = subprocess.run(  # noqa: S603 (promtool and files this test wrote)
        [promtool(), "test", "rules", str(test_file)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_has_a_runbook_section() -> None:
    (rule,) = gateway_alerting_rules(runbook_base_url=RUNBOOK)["groups"][0]["rules"]
    assert f"### {rule['alert']}" in DOC.read_text().splitlines()
    assert rule["annotations"]["runbook_url"] == f"{RUNBOOK}#{rule['alert'].lower()}"
