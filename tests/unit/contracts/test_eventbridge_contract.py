"""EventBridge detail-types the Ops stack matches, exactly as EC2 emits them.

EC2 user guide: "Spot Instance interruption notices" (``EC2 Spot Instance Interruption Warning``)
and "EC2 instance rebalance recommendations" (``EC2 Instance Rebalance Recommendation``), both from
source ``aws.ec2``. A rule with a misspelt detail-type deploys fine and never fires.
"""

from __future__ import annotations

import json
from pathlib import Path

from lambdas.spot_interruption.events import KINDS
from tests.synth import SynthResult
from tests.templates import resources

EC2_DETAIL_TYPES = {"EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation"}
EVENTS = Path(__file__).resolve().parents[2] / "events"


def _patterns(synth: SynthResult, stage: str) -> list[dict[str, object]]:
    return [
        rule["Properties"]["EventPattern"]
        for template in synth.templates[stage].values()
        for rule in resources(template, "AWS::Events::Rule").values()
        if "EventPattern" in rule["Properties"]
    ]


def test_every_ec2_rule_matches_an_exact_documented_detail_type(synth: SynthResult, stage: str) -> None:
    ec2_patterns = [p for p in _patterns(synth, stage) if p.get("source") == ["aws.ec2"]]
    assert ec2_patterns
    for pattern in ec2_patterns:
        detail_types = pattern["detail-type"]
        assert isinstance(detail_types, list)
        assert set(detail_types) <= EC2_DETAIL_TYPES, detail_types


def test_the_spot_warning_rule_exists_on_every_stage(synth: SynthResult, stage: str) -> None:
    matched = {
        detail_type
        for pattern in _patterns(synth, stage)
        if pattern.get("source") == ["aws.ec2"]
        for detail_type in pattern["detail-type"]  # type: ignore[attr-defined]
    }
    assert "EC2 Spot Instance Interruption Warning" in matched


def test_the_handler_accepts_exactly_the_documented_detail_types() -> None:
    assert set(KINDS) == EC2_DETAIL_TYPES


def test_sample_events_carry_the_documented_detail_types() -> None:
    samples = {json.loads(path.read_text()).get("detail-type") for path in EVENTS.glob("*.json")}
    assert samples >= EC2_DETAIL_TYPES
