"""Backoff and deadlines, with injectable clock and sleep so tests run in milliseconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff without jitter: callers retry different objects, not a herd."""

    base: float = 0.25
    factor: float = 2.0
    cap: float = 5.0

    def delay(self, attempt: int) -> float:
        """Delay after the `attempt`-th failure (1-based)."""
        return min(self.cap, self.base * self.factor ** max(0, attempt - 1))


class Deadline:
    """A wall-clock deadline (epoch seconds): Spot deadlines come from the event's `time`."""

    def __init__(
        self,
        at: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.at = at
        self.clock = clock
        self._sleep = sleep

    def remaining(self) -> float:
        return self.at - self.clock()

    def sleep_if_time(self, seconds: float, *, margin: float = 0.0) -> bool:
        """Sleep `seconds` if that still leaves `margin` before the deadline; else return False."""
        if self.remaining() - seconds <= margin:
            return False
        self._sleep(seconds)
        return True
