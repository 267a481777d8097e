"""Event parsing: the AWS documentation's event shapes are accepted, bad ones rejected by name."""

from __future__ import annotations

import time

import pytest
from lambda_fakes import iso, load_event

from lambdas.spot_interruption.events import EventRejected, parse_event

NOW = time.time()


def parse(event: object) -> object:
    return parse_event(event, now=NOW, safety_seconds=10)


def test_interruption_warning_from_docs_is_parsed() -> None:
    event = parse_event(
        load_event("spot_interruption_warning.json", time=iso(NOW - 5)), now=NOW, safety_seconds=10
    )
    assert event.kind == "interruption"
    assert event.instance_id == "i-1234567890abcdef0"
    assert event.instance_action == "terminate"
    assert event.event_id == "12345678-1234-1234-1234-123456789012"


def test_deadline_is_two_minutes_after_event_time_not_after_invocation() -> None:
    event = parse_event(
        load_event("spot_interruption_warning.json", time=iso(NOW - 30)), now=NOW, safety_seconds=10
    )
    assert event.deadline == pytest.approx(int(NOW - 30) + 120, abs=1)


def test_rebalance_recommendation_from_docs_is_parsed() -> None:
    event = parse_event(
        load_event("rebalance_recommendation.json", time=iso(NOW)), now=NOW, safety_seconds=10
    )
    assert event.kind == "rebalance"
    assert event.instance_action == ""


def warning(**changes: object) -> dict[str, object]:
    event: dict[str, object] = load_event("spot_interruption_warning.json", **changes)
    return event


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        pytest.param("not a dict", "malformed", id="not-an-object"),
        pytest.param(
            {"detail-type": "EC2 Spot Instance Interruption Warning"},
            "unexpected_event",
            id="missing-source",
        ),
        pytest.param(
            warning(**{"detail-type": "EC2 Instance State-change Notification"}),
            "unexpected_event",
            id="unknown-detail-type",
        ),
        pytest.param(warning(detail=None, time=iso(NOW)), "malformed", id="missing-detail"),
        pytest.param(
            warning(detail={"instance-id": "i-xyz"}, time=iso(NOW)),
            "malformed",
            id="bad-instance-id",
        ),
        pytest.param(warning(id="", time=iso(NOW)), "malformed", id="missing-id"),
        pytest.param(warning(time="yesterday"), "malformed", id="bad-time"),
        pytest.param(warning(time=iso(NOW + 3600)), "malformed", id="time-in-future"),
        pytest.param(warning(), "stale", id="stale-docs-example"),
        pytest.param(warning(time=iso(NOW - 115)), "stale", id="stale-inside-safety-margin"),
    ],
)
def test_bad_events_are_rejected_with_a_reason(event: object, reason: str) -> None:
    with pytest.raises(EventRejected) as info:
        parse(event)
    assert info.value.reason == reason
