"""Every alert's runbook link lands on a section of docs/observability.md."""

from __future__ import annotations

from pathlib import Path

from config import load_stages
from observability.rules import alerting_rules
from stacks.alert_routing import AMP_HEALTH

DOC = Path(__file__).resolve().parents[3] / "docs" / "observability.md"


def test_every_alert_has_a_runbook_section() -> None:
    config = load_stages()["prod"]
    rules = alerting_rules(
        models=list(config.models),
        observability=config.observability,
        runbook_base_url=config.observability.runbook_base_url,
    )
    headings = {
        line.removeprefix("### ").strip() for line in DOC.read_text().splitlines() if line.startswith("### ")
    }
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["alert"] in headings, rule["alert"]
            assert rule["annotations"]["runbook_url"].endswith(f"#{rule['alert'].lower()}")


def test_every_alerting_path_alarm_has_a_runbook_section() -> None:
    """The CloudWatch alarms of stacks/alert_routing.py link to #<name in lower case>."""
    headings = {
        line.removeprefix("### ").strip() for line in DOC.read_text().splitlines() if line.startswith("### ")
    }
    expected = {"MetricsHeartbeatMissing"} | {f"Amp{metric}" for metric in AMP_HEALTH}
    assert expected <= headings, expected - headings
