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
            raise ValueError(f"cron {expression!r}: {name} field {value!r} is not valid")
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ValueError(f"cron {expression!r}: exactly one of day-of-month and day-of-week must be '?'")
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
        if self.enabled and self.scale_down_cron == self.scale_up_cron:
            raise ValueError("scale_down_cron and scale_up_cron are the same schedule")
        if self.enabled and self.models == [] and self.node_groups == []:
            raise ValueError(
                "models and node_groups are both empty: nothing to scale; allowed: omit them "
                "(everything) or list at least one model or GPU node group"
            )
        return self
