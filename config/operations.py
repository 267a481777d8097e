"""Spot interruption handling and the off-hours schedule of a stage."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from config.base import Strict

# EventBridge Scheduler cron: minutes hours day-of-month month day-of-week year.
_CRON_FIELDS = (
    ("minutes", r"(\*|[0-5]?\d)([,/-][0-5]?\d)*"),
    ("hours", r"(\*|[01]?\d|2[0-3])([,/-]([01]?\d|2[0-3]))*"),
    ("day-of-month", r"(\?|\*|L|W|([1-9]|[12]\d|3[01])W?)([,/-]([1-9]|[12]\d|3[01]))*"),
    ("month", r"(\*|[1-9]|1[0-2]|[A-Z]{3})([,/-]([1-9]|1[0-2]|[A-Z]{3}))*"),
    ("day-of-week", r"(\?|\*|[1-7]|[A-Z]{3})([,/#-]([1-7]|[A-Z]{3}|L))*L?"),
    ("year", r"(\*|\d{4})([,/-]\d{4})*"),
)


MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
"""EventBridge Scheduler cron names: day-of-week 1-7 is SUN-SAT (Sunday is 1), month 1-12 is JAN-DEC
(https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html#cron-based)."""
YEAR_RANGE = (1970, 2199)
_NAMES = {"month": MONTH_NAMES, "day-of-week": DAY_NAMES}
_RANGES = {
    "minutes": (0, 59),
    "hours": (0, 23),
    "day-of-month": (1, 31),
    "month": (1, 12),
    "day-of-week": (1, 7),
}


def _current_year() -> int:
    return datetime.now(UTC).year


def _check_names_and_years(expression: str, fields: list[str]) -> None:
    for (name, _), value in zip(_CRON_FIELDS, fields, strict=True):
        allowed = _NAMES.get(name)
        for word in re.findall(r"[A-Z]{3}", value):
            if allowed is None or word not in allowed:
                raise ValueError(
                    f"cron {expression!r}: {name} field {value!r}: {word!r} is not a "
                    f"{'name' if allowed is None else name.replace('-', ' ') + ' name'}; allowed: "
                    + (
                        f"{'-'.join(allowed[:: len(allowed) - 1])} ({', '.join(allowed)}) or numbers"
                        if allowed
                        else "numbers"
                    )
                )
    years = [int(year) for year in re.findall(r"\d{4}", fields[5])]
    outside = [year for year in years if not YEAR_RANGE[0] <= year <= YEAR_RANGE[1]]
    if outside:
        raise ValueError(f"cron {expression!r}: years {outside}; allowed: {YEAR_RANGE[0]} to {YEAR_RANGE[1]}")
    this_year = _current_year()
    if years and "*" not in fields[5] and "/" not in fields[5] and max(years) < this_year:
        raise ValueError(
            f"cron {expression!r}: year field {fields[5]!r} is in the past, so the schedule never runs; "
            f"allowed: * or a year from {this_year}"
        )


def _expand(name: str, value: str) -> frozenset[int] | str:
    """The values a cron field matches, or the field itself when it uses ? L W # (kept as written)."""
    if name not in _RANGES or re.search(r"[?LW#]", value):
        return value
    low, high = _RANGES[name]
    names = _NAMES.get(name, ())
    for index, word in enumerate(names, start=1):
        value = value.replace(word, str(index))
    matched: set[int] = set()
    for part in value.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            start, end = low, high
        elif "-" in span:
            first, last = span.split("-", 1)
            start, end = int(first), int(last)
        else:
            start = int(span)
            end = high if step else start
        matched.update(range(start, end + 1, int(step) if step else 1))
    return frozenset(matched)


def normalised_cron(expression: str) -> tuple[frozenset[int] | str, ...]:
    """A form in which equivalent crons are equal: '0 20 ? * MON-FRI *' == '00 20 ? * 2-6 *'."""
    return tuple(
        _expand(name, value) for (name, _), value in zip(_CRON_FIELDS, expression.split(), strict=True)
    )


def validate_cron(expression: str) -> str:
    """Check an EventBridge Scheduler cron body (the part inside cron(...))."""
    fields = expression.split()
    if len(fields) != len(_CRON_FIELDS):
        raise ValueError(
            f"cron {expression!r} has {len(fields)} fields; allowed: 6 fields "
            "(minutes hours day-of-month month day-of-week year), e.g. '0 20 ? * MON-FRI *'"
        )
    for value, (name, pattern) in zip(fields, _CRON_FIELDS, strict=True):
        if not re.fullmatch(pattern, value):
            hint = "; write day and month names in upper case (MON, JAN)" if re.search("[a-z]", value) else ""
            raise ValueError(f"cron {expression!r}: {name} field {value!r} is not valid{hint}")
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ValueError(f"cron {expression!r}: exactly one of day-of-month and day-of-week must be '?'")
    _check_names_and_years(expression, fields)
    return expression


def _fixed_time_of_day(expression: str) -> int | None:
    """Minutes after midnight when a cron fires at one time of day (e.g. '0 19 ? * MON-FRI *')."""
    minutes, hours = expression.split()[:2]
    if minutes.isdigit() and hours.isdigit():
        return int(hours) * 60 + int(minutes)
    return None


# Daylight-saving checks look at these years: fixed, so validation does not depend on today's date.
_DST_CHECK_YEARS = (2026, 2027)


def dst_problem(expression: str, timezone: str) -> str | None:
    """Why a fixed-time cron would be skipped on a daylight-saving change in `timezone`, or None.

    EventBridge Scheduler skips a run whose local time does not exist (spring forward); a skipped
    scale-up would leave a stage down for a day. A repeated local time (fall back) runs once: fine.
    """
    at = _fixed_time_of_day(expression)
    if at is None:
        return None
    zone = ZoneInfo(timezone)
    hour, minute = divmod(at, 60)
    day = date(_DST_CHECK_YEARS[0], 1, 1)
    while day.year in _DST_CHECK_YEARS:
        local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
        round_trip = local.astimezone(UTC).astimezone(zone)
        if (round_trip.hour, round_trip.minute) != (hour, minute):
            return f"local {hour:02d}:{minute:02d} does not exist on {day} in {timezone} (skipped run)"
        day += timedelta(days=1)
    return None


class RebalanceAction(StrEnum):
    IGNORE = "ignore"
    CORDON = "cordon"
    DRAIN = "drain"


SPOT_NOTICE_SECONDS = 120
"""EC2 gives two minutes between the interruption warning and the reclaim."""


class SpotConfig(Strict):
    rebalance_action: RebalanceAction = RebalanceAction.CORDON
    function_timeout_seconds: int = Field(
        default=130,
        gt=SPOT_NOTICE_SECONDS,
        le=300,
        description="Lambda timeout: just over the notice, so a drain is never cut off by Lambda first.",
    )
    reserved_concurrency: int = Field(
        default=10,
        ge=1,
        le=100,
        description="Nodes drained at once; a Spot pool is often reclaimed several nodes at a time.",
    )


class OffHoursConfig(Strict):
    enabled: bool = False
    timezone: str = "UTC"
    scale_down_cron: str = "0 20 ? * MON-FRI *"
    scale_up_cron: str = "0 7 ? * MON-FRI *"
    models: list[str] | None = Field(default=None, description="Model ids; default: all.")
    node_groups: list[str] | None = Field(default=None, description="GPU groups; default: all.")
    floor_replicas: int = Field(default=0, ge=0, description="Replicas kept per model at night.")
    floor_nodes: int = Field(default=0, ge=0, description="Nodes kept per GPU group at night.")
    ready_alarm_minutes: int = Field(
        default=30, ge=5, le=240, description="After scale-up, alarm if a model has no ready pod."
    )

    @property
    def hours_off_per_night(self) -> float | None:
        """Hours from scale-down to scale-up when both crons fire at one fixed time of day, else None.

        The off-hours scaler multiplies the nodes it frees by this to estimate GPU node-hours saved.
        """
        down, up = _fixed_time_of_day(self.scale_down_cron), _fixed_time_of_day(self.scale_up_cron)
        if down is None or up is None:
            return None
        minutes = (up - down) % (24 * 60)
        return round(minutes / 60, 2)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA time zone; allowed: names such as Europe/Berlin"
            ) from None
        return value

    @field_validator("scale_down_cron", "scale_up_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return validate_cron(value)

    @model_validator(mode="after")
    def _clear_of_daylight_saving_changes(self) -> OffHoursConfig:
        for name in ("scale_down_cron", "scale_up_cron"):
            problem = dst_problem(getattr(self, name), self.timezone)
            if problem:
                raise ValueError(
                    f"{name} {getattr(self, name)!r}: {problem}; allowed: a time of day that "
                    "exists every day in the time zone (outside the spring-forward gap)"
                )
        return self

    @model_validator(mode="after")
    def _different_schedules(self) -> OffHoursConfig:
        if self.enabled and normalised_cron(self.scale_down_cron) == normalised_cron(self.scale_up_cron):
            raise ValueError(
                f"scale_down_cron {self.scale_down_cron!r} and scale_up_cron {self.scale_up_cron!r} are "
                "the same schedule (they fire at the same times); allowed: two different times"
            )
        if self.enabled and self.models == [] and self.node_groups == []:
            raise ValueError(
                "models and node_groups are both empty: nothing to scale; allowed: omit them "
                "(everything) or list at least one model or GPU node group"
            )
        return self
