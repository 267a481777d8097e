"""Test doubles and event loaders shared by the Lambda tests (a uniquely named module:
tests/ is not a package, so `conftest` is not importable without clashing)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

EVENTS = Path(__file__).resolve().parents[2] / "events"


class StaticToken:
    """A token source for client-level tests; counts refreshes."""

    def __init__(self, token: str = "k8s-aws-v1.dGVzdA") -> None:  # noqa: S107
        self.token = token
        self.invalidations = 0

    def __call__(self) -> str:
        return self.token

    def invalidate(self) -> None:
        self.invalidations += 1


def load_event(name: str, **changes: object) -> dict[str, object]:
    event: dict[str, object] = json.loads((EVENTS / name).read_text())
    event.update(changes)
    return event


def iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LambdaContextStub:
    function_name = "spot-interruption"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "req-1"
    log_group_name = "/aws/lambda/test"
    log_stream_name = "stream"

    remaining_ms = 130_000  # the recommended timeout, just over the two-minute notice

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
