"""The scheduler payload: {"action": "scale_down"} or {"action": "scale_up"}."""

from __future__ import annotations

from typing import Any, Literal

Action = Literal["scale_down", "scale_up"]
ACTIONS: tuple[Action, ...] = ("scale_down", "scale_up")


class EventRejected(ValueError):  # noqa: N818 - a rejection, not an error of ours
    pass


def parse_action(raw: Any) -> Action:
    if not isinstance(raw, dict):
        raise EventRejected(f"event must be an object with an action, got {type(raw).__name__}")
    action = raw.get("action")
    if action is None:
        raise EventRejected("event has no action; expected one of scale_down, scale_up")
    for known in ACTIONS:
        if action == known:
            return known
    raise EventRejected(f"unknown action {action!r}; expected one of scale_down, scale_up")
