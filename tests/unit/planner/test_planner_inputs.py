"""Traces, shaping, profiles, prices and schedules: good inputs load, bad ones fail clearly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from config import StageConfig
from config.operations import OffHoursConfig
from planner.prices import PriceError, hourly_price
from planner.profiles import ProfileError, replica_profile
from planner.schedule import Cron, ScheduleError, off_hours_share, offhours_windows
from planner.trace import DEFAULT_TRACE, TraceError, load_trace, shape
from tests.unit.planner.conftest import make_profile


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_simple_csv_loads_and_sorts(tmp_path: Path) -> None:
    trace = load_trace(write(tmp_path, "arrival_seconds,prompt_tokens,output_tokens\n2.5,10,5\n0.5,20,7\n"))
    assert trace.arrival.tolist() == [0.5, 2.5]
    assert trace.prompt_tokens.tolist() == [20, 10]
    assert trace.duration_seconds == 60


def test_azure_csv_keeps_sub_second_arrivals(tmp_path: Path) -> None:
    text = "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n"
    text += "2023-11-16 18:15:50.9951690,396,109\n"
    trace = load_trace(write(tmp_path, text))
    assert trace.start == datetime(2023, 11, 16, 18, 15, tzinfo=UTC)
    assert trace.arrival == pytest.approx([46.68059, 50.995169])


def test_the_bundled_trace_matches_its_readme() -> None:
    trace = load_trace(DEFAULT_TRACE)
    assert trace.size == 19_366
    assert trace.duration_seconds == 3600
    assert float(trace.prompt_tokens.mean()) == pytest.approx(1155, abs=1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("a,b,c\n1,2,3\n", "not a known trace format"),
        ("arrival_seconds,prompt_tokens,output_tokens\n", "no requests"),
        ("arrival_seconds,prompt_tokens,output_tokens\n1,ten,5\n", "trace.csv:2: prompt tokens 'ten'"),
        ("arrival_seconds,prompt_tokens,output_tokens\n-1,10,5\n", "finite number >= 0"),
        ("arrival_seconds,prompt_tokens,output_tokens\n1,10,0\n", "output tokens 0 is below 1"),
        ("arrival_seconds,prompt_tokens,output_tokens\n1,10\n", "expected 3 columns"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n16/11/2023,1,1\n", "is not 'YYYY-MM-DD HH:MM:SS"),
    ],
)
def test_bad_traces_fail_with_file_line_and_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        load_trace(write(tmp_path, text))


def test_missing_trace_file(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="not found"):
        load_trace(tmp_path / "absent.csv")


def test_shaping_is_labelled_and_deterministic() -> None:
    trace = load_trace(DEFAULT_TRACE)
    day = shape(trace, "daily:1", seed=3)
    assert day.is_synthetic
    assert "daily cosine" in day.describe()
    assert day.duration_seconds == 86400
    assert 0.25 * 24 * trace.size < day.size < 24 * trace.size
    assert np.array_equal(day.arrival, shape(trace, "daily:1", seed=3).arrival)
    faster = shape(trace, "timescale:2", seed=0)
    assert faster.duration_seconds == 1800
    assert "SYNTHETIC" in faster.describe()
    with pytest.raises(TraceError, match="not known"):
        shape(trace, "weekly", seed=0)
    with pytest.raises(TraceError, match="must be > 0"):
        shape(trace, "timescale:0", seed=0)
    half = shape(trace, "thin:0.5", seed=2)
    assert half.duration_seconds == trace.duration_seconds
    assert 0.45 * trace.size < half.size < 0.55 * trace.size
    assert "thinned to 0.5 of the requests" in half.describe()
    with pytest.raises(TraceError, match=r"must be in \(0, 1\]"):
        shape(trace, "thin:2", seed=0)


def test_profiles_derive_from_cited_numbers(stages: dict[str, StageConfig]) -> None:
    version = stages["prod"].models[0].versions[0]
    profile = replica_profile(version, "g5.2xlarge")
    # 15 GiB of weights over 600 GB/s x 0.75 + 3 ms overhead.
    assert profile.step_seconds == pytest.approx(15 * 2**30 / 450e9 + 0.003)
    # Llama 3.1 8B: 2 x 32 layers x 8 KV heads x 128 x 2 bytes = 128 KiB per token.
    assert profile.per_context_token_seconds == pytest.approx(131072 / 450e9)


def test_bad_profiles_fail_clearly(stages: dict[str, StageConfig]) -> None:
    version = stages["prod"].models[0].versions[0]
    unknown = version.model_copy(update={"served_model_name": "phi-9", "source": "bucket://phi-9"})
    with pytest.raises(ProfileError, match="matches no known architecture"):
        replica_profile(unknown, "g5.2xlarge")
    too_big = version.model_copy(update={"weights_gib": 23.0})
    with pytest.raises(ProfileError, match="leaves no KV cache"):
        replica_profile(too_big, "g5.2xlarge")
    with pytest.raises(ProfileError, match=r"not in config\.catalog"):
        replica_profile(version, "m7i.large")
    with pytest.raises(ProfileError, match="step_seconds"):
        make_profile(step_seconds=-1.0)
    with pytest.raises(PriceError, match="no price"):
        hourly_price("x9.huge", spot=False)


def test_eventbridge_crons_in_the_stage_time_zone() -> None:
    cron = Cron.parse("0 19 ? * MON-FRI *")
    assert cron.matches(datetime(2024, 3, 5, 19, 0))  # Tuesday
    assert not cron.matches(datetime(2024, 3, 9, 19, 0))  # Saturday
    with pytest.raises(ScheduleError, match="not supported"):
        Cron.parse("0 19 L * ? *")
    offhours = OffHoursConfig(enabled=True, timezone="Europe/Berlin", scale_down_cron="0 19 ? * MON-FRI *")
    # 2024-03-05 17:30 UTC is 18:30 in Berlin: on-hours, switching off 30 minutes later.
    windows = offhours_windows(offhours, datetime(2024, 3, 5, 17, 30, tzinfo=UTC), 3600)
    assert windows == [(0.0, False), (1800.0, True)]
    # Weekdays 07:00-19:00 on: 60 of 168 hours a week.
    share = off_hours_share(offhours, datetime(2024, 3, 4, tzinfo=UTC), days=28)
    assert share == pytest.approx(1 - 60 / 168, abs=0.01)
    assert offhours_windows(
        offhours.model_copy(update={"enabled": False}), datetime(2024, 3, 5, tzinfo=UTC), 60
    ) == [(0.0, False)]
