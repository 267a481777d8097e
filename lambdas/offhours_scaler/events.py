"""The scheduler payload: {"action": "scale_down"}, {"action": "scale_up"} or {"action": "check_ready"}.

check_ready is booked by a scale-up for itself (see ready_check); it changes nothing.
"""

from __future__ import annotations

from typing import Any, Literal

Action = Literal["scale_down", "scale_up", "check_ready"]
ACTIONS: tuple[Action, ...] = ("scale_down", "scale_up", "check_ready")
_EXPECTED = f"expected one of {', '.join(ACTIONS)}"


class EventRejected(ValueError):  # noqa: N818 - a rejection, not an error of ours
    pass


def parse_action(raw: Any) -> Action:
    if not isinstance(raw, dict):
        raise EventRejected(f"event must be an object with an action, got {type(raw).__name__}")
    action = raw.get("action")
    if action is None:
        raise EventRejected(f"event has no action; {_EXPECTED}")
    for known in ACTIONS:
        if action == known:
            return known
    raise EventRejected(f"unknown action {action!r}; {_EXPECTED}")
