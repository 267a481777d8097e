"""Production safety rules: an error in prod, a warning elsewhere, waived only by a written reason."""

from __future__ import annotations

from typing import Any

import pytest

from config import ConfigError, StageConfig, parse_stage
from config.safety import SAFETY_RULES, SafetyRule
from tests.unit.config.cases import stage_data

REASON = "prod serves a batch tenant that tolerates the overnight gap; agreed in review."


def load(stage: str, data: dict[str, Any]) -> StageConfig:
    return parse_stage(data, name=stage, source=f"config/{stage}.yaml")


def zero_floor(data: dict[str, Any]) -> dict[str, Any]:
    data["offhours"]["floor_replicas"] = 0
    return data


def test_prod_refuses_a_finding() -> None:
    with pytest.raises(ConfigError, match="safety rule offhours-zero-floor"):
        load("prod", zero_floor(stage_data("prod")))


def test_prod_accepts_a_finding_waived_with_a_reason() -> None:
    data = zero_floor(stage_data("prod"))
    data["safety_overrides"] = {"offhours-zero-floor": REASON}
    config = load("prod", data)
    assert config.safety_overrides == {SafetyRule.OFFHOURS_ZERO_FLOOR: REASON}
    assert config.safety_warnings == []


def test_other_stages_warn_instead() -> None:
    data = stage_data("staging")
    data.pop("safety_overrides")
    config = load("staging", data)
    assert len(config.safety_warnings) == 1
    assert config.safety_warnings[0].startswith("safety rule offhours-zero-floor: offhours.enabled")


def test_a_waiver_of_a_rule_the_stage_does_not_break_is_a_warning() -> None:
    data = stage_data("prod")
    data["safety_overrides"] = {"hugging-face-source": REASON}
    assert load("prod", data).safety_warnings == [
        "safety_overrides ['hugging-face-source'] waive rules this stage does not break; remove them so a "
        "waiver does not outlive its reason"
    ]


def test_an_unknown_rule_cannot_be_waived() -> None:
    data = stage_data("prod")
    data["safety_overrides"] = {"no-tls": REASON}
    with pytest.raises(ConfigError, match=r"safety_overrides\.no-tls"):
        load("prod", data)


def test_every_rule_has_its_reason_written() -> None:
    assert set(SAFETY_RULES) == set(SafetyRule)


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_the_shipped_stages_load_without_warnings(stage: str) -> None:
    assert load(stage, stage_data(stage)).safety_warnings == []
