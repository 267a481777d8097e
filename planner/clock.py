"""Local time: the stage's time zone, the replay start (``--start``) and its stated default.

The stage's clock is ``offhours.timezone`` (the zone its off-hours crons run in; UTC when unset).
Default start: 10:00 local time on the first weekday on or after the trace's recorded date, moved on
hour by hour if the stage's off-hours schedule has it off then. So a first run replays the trace in
working hours wherever the stage is, instead of at the recorded UTC time (01:00 in Los Angeles).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from config.operations import OffHoursConfig
from planner.schedule import offhours_windows

DEFAULT_LOCAL_HOUR = 10
RECORDED = "recorded"
START_FORMATS = (
    "YYYY-MM-DDTHH:MM (local time in the stage's zone), an ISO time with an offset "
    "(2024-03-05T10:00+01:00 or ...Z), 'recorded' (the trace's own time) or 'default'"
)


class StartError(ValueError):
    """A ``--start`` value that cannot be read; the message says what is allowed."""


def stage_zone(offhours: OffHoursConfig) -> ZoneInfo:
    return ZoneInfo(offhours.timezone)


def parse_start(text: str, zone: ZoneInfo) -> datetime | None:
    """``--start`` as an aware UTC datetime; None for 'recorded' and 'default' (decided by the caller)."""
    value = text.strip()
    if value.lower() in (RECORDED, "default"):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise StartError(f"--start {text!r} is not a time; allowed: {START_FORMATS}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def default_start(recorded: datetime, zone: ZoneInfo, offhours: OffHoursConfig) -> datetime:
    """10:00 local on the first weekday on or after the recorded date, inside the stage's on-hours."""
    day = recorded.astimezone(zone).date()
    while day.weekday() >= 5:
        day += timedelta(days=1)
    candidate = datetime.combine(day, time(DEFAULT_LOCAL_HOUR), tzinfo=zone).astimezone(UTC)
    if not offhours.enabled:
        return candidate
    windows = offhours_windows(offhours, candidate, 8 * 86400.0)
    if not windows[0][1]:
        return candidate
    on = next((moment for moment, off in windows if not off), None)
    return candidate if on is None else candidate + timedelta(seconds=on)


def resolve_start(text: str | None, recorded: datetime, offhours: OffHoursConfig) -> datetime:
    """The replay start for ``--start`` (None = the stated default)."""
    zone = stage_zone(offhours)
    if text is not None and text.strip().lower() == RECORDED:
        return recorded
    parsed = parse_start(text, zone) if text is not None else None
    return parsed if parsed is not None else default_start(recorded, zone, offhours)


def local_label(moment: datetime, zone: ZoneInfo) -> str:
    """'2023-11-16 10:00 CET (09:00 UTC)': local first, UTC beside it."""
    local = moment.astimezone(zone)
    if zone.key == "UTC":
        return f"{local:%a %Y-%m-%d %H:%M} UTC"
    return f"{local:%a %Y-%m-%d %H:%M %Z} ({moment.astimezone(UTC):%H:%M} UTC)"
