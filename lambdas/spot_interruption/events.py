"""Parse and validate the EventBridge events this function accepts."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Literal

from contract.events import EC2_SOURCE, REBALANCE_RECOMMENDATION, SPOT_INTERRUPTION_WARNING

KINDS: dict[str, Literal["interruption", "rebalance"]] = {
    SPOT_INTERRUPTION_WARNING: "interruption",
    REBALANCE_RECOMMENDATION: "rebalance",
}
# EC2 reclaims a Spot instance two minutes after the warning. A rebalance recommendation has no
# fixed deadline; it gets the same budget so one Lambda timeout fits both.
NOTICE_SECONDS = 120.0
# Allowed clock skew for an event stamped in the future.
MAX_FUTURE_SKEW_SECONDS = 60.0
_INSTANCE_ID = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")


class EventRejected(ValueError):  # noqa: N818 - a rejection, not an error of ours
    """The event is malformed, unexpected or stale; `reason` is a short code for logs/metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SpotEvent:
    kind: Literal["interruption", "rebalance"]
    event_id: str
    instance_id: str
    time: dt.datetime
    region: str
    instance_action: str  # terminate, stop or hibernate; "" for a rebalance recommendation

    @property
    def deadline(self) -> float:
        """Epoch seconds by which the node is gone (or, for a rebalance, our budget ends)."""
        return self.time.timestamp() + NOTICE_SECONDS


def parse_event(raw: Any, *, now: float, safety_seconds: float) -> SpotEvent:
    """Return the typed event, or raise `EventRejected` naming what is wrong."""
    if not isinstance(raw, dict):
        raise EventRejected("malformed", f"event is a {type(raw).__name__}, not an object")
    detail_type = raw.get("detail-type")
    if raw.get("source") != EC2_SOURCE or detail_type not in KINDS:
        raise EventRejected(
            "unexpected_event",
            f"unexpected event source={raw.get('source')!r} detail-type={detail_type!r}",
        )
    event_id = raw.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise EventRejected("malformed", "event has no id")
    detail = raw.get("detail")
    if not isinstance(detail, dict):
        raise EventRejected("malformed", "event has no detail object")
    instance_id = detail.get("instance-id")
    if not isinstance(instance_id, str) or not _INSTANCE_ID.match(instance_id):
        raise EventRejected("malformed", f"detail.instance-id is not an instance id: {instance_id!r}")
    event_time = _parse_time(raw.get("time"))
    event = SpotEvent(
        kind=KINDS[detail_type],
        event_id=event_id,
        instance_id=instance_id,
        time=event_time,
        region=str(raw.get("region", "")),
        instance_action=str(detail.get("instance-action", "")),
    )
    if event_time.timestamp() > now + MAX_FUTURE_SKEW_SECONDS:
        raise EventRejected("malformed", f"event time {raw.get('time')} is in the future")
    if now >= event.deadline - safety_seconds:
        age = now - event_time.timestamp()
        raise EventRejected(
            "stale", f"event is {age:.0f} s old; its {NOTICE_SECONDS:.0f} s window has passed"
        )
    return event


def _parse_time(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise EventRejected("malformed", "event has no time")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise EventRejected("malformed", f"event time is not ISO 8601: {value!r}") from None
    if parsed.tzinfo is None:
        raise EventRejected("malformed", f"event time has no time zone: {value!r}")
    return parsed
