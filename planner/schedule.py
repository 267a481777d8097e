"""The off-hours schedule: EventBridge Scheduler 6-field crons evaluated in the stage's time zone.

Supports ``*``, ``?``, numbers, names (JAN, MON), ranges, lists and ``/`` steps; day-of-week counts
1 = SUN to 7 = SAT as in EventBridge. ``L``, ``W`` and ``#`` are rejected with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from config.operations import OffHoursConfig

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


class ScheduleError(ValueError):
    pass


def _value(token: str, names: list[str], offset: int) -> int:
    if token.upper() in names:
        return names.index(token.upper()) + offset
    return int(token)


def _field(text: str, low: int, high: int, names: list[str] | None = None, offset: int = 1) -> set[int]:
    bare = text.upper()
    for name in names or []:
        bare = bare.replace(name, "")
    if any(mark in bare for mark in "LW#"):
        raise ScheduleError(f"cron field {text!r}: L, W and # are not supported by the planner")
    if text in ("*", "?"):
        return set(range(low, high + 1))
    allowed: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span in ("*", "?"):
            first, last = low, high
        elif "-" in span:
            left, right = span.split("-", 1)
            first, last = _value(left, names or [], offset), _value(right, names or [], offset)
        else:
            first = _value(span, names or [], offset)
            last = high if step_text else first
        allowed.update(range(first, last + 1, step))
    return allowed


@dataclass(frozen=True)
class Cron:
    minutes: set[int]
    hours: set[int]
    days_of_month: set[int]
    months: set[int]
    days_of_week: set[int]  # 1 = Sunday
    any_day_of_month: bool
    any_day_of_week: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        fields = expression.split()
        if len(fields) != 6:
            raise ScheduleError(f"cron {expression!r}: expected 6 fields")
        minute, hour, dom, month, dow, _year = fields
        return cls(
            _field(minute, 0, 59),
            _field(hour, 0, 23),
            _field(dom, 1, 31),
            _field(month, 1, 12, _MONTHS),
            _field(dow, 1, 7, _DAYS),
            dom in ("?", "*"),
            dow in ("?", "*"),
        )

    def matches(self, local: datetime) -> bool:
        if local.minute not in self.minutes or local.hour not in self.hours or local.month not in self.months:
            return False
        day_of_week = (local.isoweekday() % 7) + 1  # Monday=1 in ISO -> 2 in EventBridge
        return (self.any_day_of_month or local.day in self.days_of_month) and (
            self.any_day_of_week or day_of_week in self.days_of_week
        )


def offhours_windows(offhours: OffHoursConfig, start: datetime, seconds: float) -> list[tuple[float, bool]]:
    """Switch points as (seconds from start, off_hours_now), beginning with the state at ``start``.

    The state at the start is found by looking back up to 8 days for the latest cron firing.
    """
    if not offhours.enabled:
        return [(0.0, False)]
    zone = ZoneInfo(offhours.timezone)
    down = Cron.parse(offhours.scale_down_cron)
    up = Cron.parse(offhours.scale_up_cron)
    minute = timedelta(minutes=1)
    origin = start.replace(second=0, microsecond=0)
    moment = origin - timedelta(days=8)
    state = False
    initial = False
    switches: list[tuple[float, bool]] = []
    end = start + timedelta(seconds=seconds)
    while moment < end:
        local = moment.astimezone(zone)
        fired = True if down.matches(local) else False if up.matches(local) else None
        if fired is not None and fired != state:
            state = fired
            if moment > start:
                switches.append(((moment - start).total_seconds(), state))
        if moment <= start:
            initial = state
        moment += minute
    return [(0.0, initial), *switches]


def off_hours_share(offhours: OffHoursConfig, start: datetime, days: int = 28) -> float:
    """Share of wall time spent in off-hours over ``days`` days from ``start``."""
    windows = offhours_windows(offhours, start, days * 86400.0)
    total = days * 86400.0
    off = 0.0
    for (moment, is_off), (following, _) in zip(windows, [*windows[1:], (total, False)], strict=True):
        if is_off:
            off += following - moment
    return off / total
