"""Local time: the replay start, its default inside working hours, the week shape's local peak."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from config import StageConfig
from planner.cli import main
from planner.clock import StartError, default_start, parse_start, resolve_start
from planner.schedule import offhours_windows
from planner.trace import DEFAULT_TRACE, in_zone, load_trace, local_hours, restart, shape

RECORDED = datetime(2023, 11, 16, 18, 15, tzinfo=UTC)  # the bundled trace: 19:15 in Berlin, off-hours in dev


@pytest.mark.parametrize("stage_name", ["dev", "staging", "prod"])
def test_default_start_is_10_local_on_a_weekday_and_inside_on_hours(
    stages: dict[str, StageConfig], stage_name: str
) -> None:
    stage = stages[stage_name]
    zone = ZoneInfo(stage.offhours.timezone)
    start = default_start(RECORDED, zone, stage.offhours)
    local = start.astimezone(zone)
    assert (local.hour, local.minute) == (10, 0)
    assert local.weekday() < 5
    assert local.date() == RECORDED.astimezone(zone).date()  # a Thursday: no need to move the day
    # The whole replayed hour is on-hours: the first example is not a replay of the night.
    assert offhours_windows(stage.offhours, start, 3600) == [(0.0, False)]


def test_default_start_moves_off_a_weekend_and_out_of_off_hours(stages: dict[str, StageConfig]) -> None:
    offhours = stages["dev"].offhours.model_copy(update={"scale_up_cron": "0 11 ? * MON-FRI *"})
    saturday = datetime(2024, 3, 9, 12, tzinfo=UTC)
    start = default_start(saturday, ZoneInfo("Europe/Berlin"), offhours)
    # Monday 11:00 Berlin (10:00 UTC): the weekday rule, then the later scale-up.
    assert start == datetime(2024, 3, 11, 10, 0, tzinfo=UTC)


def test_start_arguments_local_offset_recorded_and_bad() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert parse_start("2024-03-05T10:00", berlin) == datetime(2024, 3, 5, 9, 0, tzinfo=UTC)
    assert parse_start("2024-03-05T10:00+00:00", berlin) == datetime(2024, 3, 5, 10, 0, tzinfo=UTC)
    assert parse_start("2024-03-05T10:00Z", berlin) == datetime(2024, 3, 5, 10, 0, tzinfo=UTC)
    assert parse_start("default", berlin) is None
    with pytest.raises(StartError, match=r"--start 'tomorrow' is not a time; allowed: YYYY-MM-DDTHH:MM"):
        parse_start("tomorrow", berlin)


def test_recorded_keeps_the_traces_own_time(stages: dict[str, StageConfig]) -> None:
    assert resolve_start("recorded", RECORDED, stages["dev"].offhours) == RECORDED


def test_bad_start_is_a_clear_error_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stage", "dev", "--start", "tomorrow", "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "--start 'tomorrow'" in error
    assert "Traceback" not in error


def test_local_hours_follow_the_zone_and_daylight_saving() -> None:
    # 2024-03-31 00:00 UTC is 01:00 CET; Berlin moves to CEST at 01:00 UTC that night.
    start = datetime(2024, 3, 31, 0, 0, tzinfo=UTC)
    hours = local_hours(start, np.array([0.0, 1800.0, 3600.0, 7200.0]), ZoneInfo("Europe/Berlin"))
    assert hours.tolist() == pytest.approx([1.0, 1.5, 3.0, 4.0])


def test_week_shape_peaks_at_14_local_time() -> None:
    hour = load_trace(DEFAULT_TRACE)
    trace = shape(
        in_zone(restart(hour, datetime(2024, 3, 4, 9, tzinfo=UTC)), "America/Los_Angeles"), "week", 1
    )
    local = local_hours(trace.start, trace.arrival, trace.zone)
    counts = np.bincount(local.astype(np.int64), minlength=24)
    assert int(np.argmax(counts)) in (13, 14)  # the curve's top, 14:00 in Los Angeles (22:00 UTC)
    assert counts[14] > 3 * counts[2]  # trough 25 % of the peak, 12 h away
    assert "14:00 America/Los_Angeles local time" in trace.describe()


def test_off_hours_spans_and_switches_on_the_measured_clock() -> None:
    from planner.plan import measured_switches
    from planner.report import off_spans

    switches = ((0.0, False), (600.0, True), (4200.0, False))
    assert measured_switches(switches, 900.0) == ((0.0, True), (3300.0, False))
    assert off_spans(((0.0, True), (3300.0, False)), 3600.0) == [(0.0, 3300.0)]
    assert off_spans(((0.0, False), (1800.0, True)), 3600.0) == [(1800.0, 3600.0)]


def test_identical_series_are_named_not_hidden() -> None:
    from planner.report import same_as
    from planner.sim import SimResult

    def result(ready: list[float]) -> SimResult:
        series = np.asarray(ready)
        return SimResult(
            np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1, np.int8), np.arange(len(ready), dtype=float),
            series, series, {}, 0.0, 0.0, 0, 0,
        )  # fmt: skip

    twins = same_as({"a": result([1, 2]), "b": result([1, 2]), "c": result([1, 3])})
    assert twins == {"b": "a"}
