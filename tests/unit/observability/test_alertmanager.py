"""Alertmanager: amtool accepts the config, routes each severity to its topic, and inhibitions
silence the symptoms of one cause (evaluated here with Alertmanager's matcher semantics)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from observability.alertmanager import (
    MESSAGE,
    SUBJECT,
    Topics,
    alertmanager_config,
    alertmanager_definition,
    inhibit_rules,
)
from tests.unit.observability.promtool import promtool

TOPICS = Topics(
    pager="arn:aws:sns:us-west-2:333333333333:pager",
    ticket="arn:aws:sns:us-west-2:333333333333:ticket",
    heartbeat="arn:aws:sns:us-west-2:333333333333:heartbeat",
)
MATCHER = re.compile(r'^(\w+)(=~|!~|!=|=)"(.*)"$')


def amtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = str(Path(promtool()).parent / "amtool")
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, check=False)  # noqa: S603


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(alertmanager_config(topics=TOPICS, region="us-west-2", stage="prod")))
    return path


def test_definition_wraps_the_config_as_amp_expects() -> None:
    definition = yaml.safe_load(alertmanager_definition(topics=TOPICS, region="us-west-2", stage="prod"))
    assert set(definition) == {"alertmanager_config"}
    assert yaml.safe_load(definition["alertmanager_config"]) == alertmanager_config(
        topics=TOPICS, region="us-west-2", stage="prod"
    )


def test_amtool_accepts_the_config(config_file: Path) -> None:
    result = amtool("check-config", config_file.name, cwd=config_file.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 inhibit rules" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=AvailabilityBudgetBurn", "severity=critical"], "pager"),
        (["alertname=TtftBudgetBurn", "severity=warning"], "ticket"),
        (["alertname=Watchdog", "severity=none"], "heartbeat"),
        (["alertname=SomethingNew"], "ticket"),
    ],
)
def test_severity_routes_to_its_topic(config_file: Path, labels: list[str], receiver: str) -> None:
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={config_file.name}",
        f"--verify.receivers={receiver}",
        *labels,
        cwd=config_file.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_receiver_publishes_to_its_topic_with_filterable_attributes() -> None:
    config = alertmanager_config(topics=TOPICS, region="us-west-2", stage="prod")
    receivers = {receiver["name"]: receiver["sns_configs"][0] for receiver in config["receivers"]}
    assert {name: sns["topic_arn"] for name, sns in receivers.items()} == {
        "pager": TOPICS.pager,
        "ticket": TOPICS.ticket,
        "heartbeat": TOPICS.heartbeat,
    }
    for sns in receivers.values():
        assert sns["sigv4"] == {"region": "us-west-2"}
        assert sns["attributes"]["stage"] == "prod"
    assert receivers["pager"]["attributes"]["severity"] == "critical"


def test_subject_and_message_templates_render(tmp_path: Path) -> None:
    (tmp_path / "none.tmpl").write_text("")
    for text in (SUBJECT, MESSAGE):
        result = amtool(
            "template", "render", "--template.glob=none.tmpl", f"--template.text={text}", cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
    subject = amtool(
        "template", "render", "--template.glob=none.tmpl", f"--template.text={SUBJECT}", cwd=tmp_path
    )
    assert "\n" not in subject.stdout.strip()  # SNS subjects are one line
    for part in ("Status | toUpper", "Alerts.Firing | len", "model_id"):
        assert part in SUBJECT


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    found = MATCHER.match(matcher)
    assert found, matcher
    name, op, value = found.groups()
    actual = labels.get(name, "")
    hit = re.fullmatch(value, actual) is not None if "~" in op else actual == value
    return hit if op in ("=", "=~") else not hit


def inhibited(target: dict[str, str], firing: list[dict[str, str]]) -> bool:
    """Alertmanager's rule: a firing source matching the source matchers, equal on ``equal``."""
    for rule in inhibit_rules():
        if not all(_matches(m, target) for m in rule["target_matchers"]):
            continue
        for source in firing:
            if source is target or not all(_matches(m, source) for m in rule["source_matchers"]):
                continue
            if all(source.get(label, "") == target.get(label, "") for label in rule.get("equal", [])):
                return True
    return False


BURN = {"alertname": "AvailabilityBudgetBurn", "severity": "critical", "model_id": "m1", "window": "1h"}
TICKET = {"alertname": "AvailabilityBudgetBurn", "severity": "warning", "model_id": "m1", "window": "3d"}
NO_READY = {"alertname": "NoReadyReplicas", "severity": "critical", "model_id": "m1", "model_version": "v2"}


def test_no_ready_replicas_silences_that_models_symptoms_only() -> None:
    other_model = {**BURN, "model_id": "m2"}
    assert inhibited(BURN, [NO_READY])
    assert not inhibited(other_model, [NO_READY])
    assert not inhibited(NO_READY, [BURN])


def test_a_page_silences_the_same_models_tickets_not_other_pages() -> None:
    assert inhibited(TICKET, [BURN])
    assert not inhibited(BURN, [TICKET])
    node_page = {"alertname": "KubeStateMetricsDown", "severity": "critical"}
    unrelated_ticket = {"alertname": "SpotInterruptionsHigh", "severity": "warning"}
    # Neither has model_id: an absent label must not count as "equal".
    assert not inhibited({**unrelated_ticket, "alertname": "KVCacheNearFull"}, [node_page])


def test_metrics_down_silences_what_it_blinds() -> None:
    ksm_down = {"alertname": "KubeStateMetricsDown", "severity": "critical"}
    assert inhibited({"alertname": "NoReadyReplicas", "severity": "critical", "model_id": "m1"}, [ksm_down])
    assert inhibited({"alertname": "GpuPodsPending", "severity": "warning"}, [ksm_down])
    assert not inhibited(BURN, [ksm_down])  # vLLM's own metrics still speak
    absent = {"alertname": "ModelMetricsAbsent", "severity": "critical", "model_id": "m1"}
    assert inhibited({"alertname": "HighQueueDepth", "severity": "warning", "model_id": "m1"}, [absent])
    assert not inhibited({"alertname": "Watchdog", "severity": "none"}, [ksm_down, absent, NO_READY])


def test_cdk_tokens_survive_the_literal_block() -> None:
    token = "${Token[TOKEN.123]}"
    topics = Topics(pager=token, ticket=token, heartbeat=token)
    assert f"topic_arn: {token}" in alertmanager_definition(topics=topics, region="r", stage="dev")
