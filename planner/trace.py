"""Request traces: loading the Azure LLM inference CSV or a simple CSV, and labelled shaping.

Simple CSV format (header required): ``arrival_seconds,prompt_tokens,output_tokens`` with arrival
seconds from the start of the trace. The Azure format is ``TIMESTAMP,ContextTokens,GeneratedTokens``
(github.com/Azure/AzurePublicDataset, AzureLLMInferenceTrace_*.csv).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
SIMPLE_COLUMNS = ("arrival_seconds", "prompt_tokens", "output_tokens")
DEFAULT_TRACE = Path(__file__).resolve().parent.parent / "data" / "traces" / "AzureLLMInferenceTrace_conv.csv"


class TraceError(ValueError):
    """A trace file or shaping request that cannot be used; the message names file, line and field."""


@dataclass(frozen=True)
class Trace:
    """Requests sorted by arrival; arrivals in seconds from ``start`` (UTC)."""

    arrival: np.ndarray  # float64 seconds
    prompt_tokens: np.ndarray  # int64
    output_tokens: np.ndarray  # int64
    start: datetime
    duration_seconds: float
    label: str
    synthetic_steps: tuple[str, ...] = field(default_factory=tuple)
    # The stage's clock for labels and the daily curve, and the recorded start when the trace is
    # replayed from another time (the arrivals between requests are unchanged, so it is not shaping).
    zone_name: str = "UTC"
    recorded_start: datetime | None = None

    @property
    def size(self) -> int:
        return int(self.arrival.size)

    @property
    def is_synthetic(self) -> bool:
        return bool(self.synthetic_steps)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.zone_name)

    def describe(self) -> str:
        from planner.clock import local_label  # planner.clock imports the schedule, not the trace

        shaping = f" [SYNTHETIC: {'; '.join(self.synthetic_steps)}]" if self.synthetic_steps else ""
        hours = self.duration_seconds / 3600
        when = local_label(self.start, self.zone)
        moved = (
            f" (recorded from {self.recorded_start:%Y-%m-%d %H:%M} UTC; replayed at this time)"
            if self.recorded_start is not None and self.recorded_start != self.start
            else ""
        )
        return f"{self.label}: {self.size:,} requests over {hours:.1f} h from {when}{moved}{shaping}"


def load_trace(path: Path, start: datetime | None = None) -> Trace:
    """Read a trace in the Azure or the simple CSV format (chosen by the header)."""
    if not path.is_file():
        raise TraceError(f"{path}: trace file not found")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise TraceError(f"{path}: empty file; expected a header {SIMPLE_COLUMNS} or {AZURE_COLUMNS}")
        columns = tuple(name.strip() for name in header)
        if columns[:3] == AZURE_COLUMNS:
            times, prompts, outputs = _read_rows(path, reader, _azure_seconds)
            first = min(times) if times else 0.0
            origin = datetime.fromtimestamp(math.floor(first / 60) * 60, tz=UTC)
            arrivals = [value - origin.timestamp() for value in times]
        elif columns[:3] == SIMPLE_COLUMNS:
            arrivals, prompts, outputs = _read_rows(path, reader, _plain_seconds)
            origin = start or datetime(2024, 1, 1, 9, tzinfo=UTC)
        else:
            raise TraceError(
                f"{path}: header {list(columns)} is not a known trace format; allowed: "
                f"{','.join(SIMPLE_COLUMNS)} or {','.join(AZURE_COLUMNS)}"
            )
    if not arrivals:
        raise TraceError(f"{path}: no requests after the header")
    return _build(arrivals, prompts, outputs, origin if start is None else start, path.name)


def _build(
    arrivals: list[float], prompts: list[int], outputs: list[int], start: datetime, label: str
) -> Trace:
    order = np.argsort(np.asarray(arrivals), kind="stable")
    arrival = np.asarray(arrivals, dtype=np.float64)[order]
    # Whole minutes: a trace of 59.9 minutes covers the hour it was cut from.
    duration = max(60.0, math.ceil((float(arrival[-1]) + 1e-9) / 60) * 60)
    return Trace(
        arrival=arrival,
        prompt_tokens=np.asarray(prompts, dtype=np.int64)[order],
        output_tokens=np.asarray(outputs, dtype=np.int64)[order],
        start=start,
        duration_seconds=duration,
        label=label,
    )


def _read_rows(
    path: Path, rows: Iterable[list[str]], to_seconds: Callable[[str, str], float]
) -> tuple[list[float], list[int], list[int]]:
    times: list[float] = []
    prompts: list[int] = []
    outputs: list[int] = []
    for line_number, row in enumerate(rows, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < 3:
            raise TraceError(f"{path}:{line_number}: expected 3 columns, found {len(row)}: {row}")
        where = f"{path}:{line_number}"
        times.append(to_seconds(row[0].strip(), where))
        prompts.append(_tokens(row[1], where, "prompt tokens", minimum=1))
        outputs.append(_tokens(row[2], where, "output tokens", minimum=1))
    return times, prompts, outputs


def _tokens(text: str, where: str, what: str, minimum: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise TraceError(f"{where}: {what} {text!r} is not an integer") from None
    if value < minimum:
        raise TraceError(f"{where}: {what} {value} is below {minimum}")
    return value


def _plain_seconds(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TraceError(f"{where}: arrival_seconds {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise TraceError(f"{where}: arrival_seconds {text!r} must be a finite number >= 0")
    return value


def _azure_seconds(text: str, where: str) -> float:
    # The Azure files carry 7 fractional digits, which datetime does not parse; keep microseconds.
    whole, _, fraction = text.partition(".")
    try:
        moment = datetime.strptime(whole, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        micros = int((fraction + "000000")[:6]) if fraction else 0
    except ValueError:
        raise TraceError(f"{where}: TIMESTAMP {text!r} is not 'YYYY-MM-DD HH:MM:SS[.fffffff]'") from None
    return moment.timestamp() + micros / 1e6


# Shaping: every step is recorded on the trace and printed as SYNTHETIC wherever results appear.


def time_scale(trace: Trace, factor: float) -> Trace:
    """Compress (factor > 1) or stretch (factor < 1) time: the arrival rate is multiplied by factor."""
    if not factor > 0:
        raise TraceError(f"time-scale factor {factor} must be > 0")
    return replace(
        trace,
        arrival=trace.arrival / factor,
        duration_seconds=trace.duration_seconds / factor,
        synthetic_steps=(*trace.synthetic_steps, f"time-scaled x{factor:g} (rate x{factor:g})"),
    )


def daily_curve(hour_of_day: np.ndarray, trough: float = 0.25, peak_hour: float = 14.0) -> np.ndarray:
    """Relative load by local hour: a cosine from ``trough`` (12 h from the peak) to 1.0 at ``peak_hour``.

    A generic diurnal shape (one peak in the afternoon, a night trough); not fitted to any service.
    """
    phase = 2 * np.pi * (hour_of_day - peak_hour) / 24.0
    return trough + (1.0 - trough) * (1 + np.cos(phase)) / 2


def daily_shape(trace: Trace, days: int, seed: int, trough: float = 0.25, peak_hour: float = 14.0) -> Trace:
    """Repeat the trace back to back for ``days`` days, thinned by the daily curve (peak = recorded rate).

    Each copy keeps each request with probability curve(local hour at its arrival), drawn from a
    generator seeded by ``seed``, so the peak hours replay the recorded traffic and the nights a
    sample of it. Time of day is the trace's zone (the stage's), daylight-saving changes included.
    """
    if days < 1:
        raise TraceError(f"daily shaping needs days >= 1, got {days}")
    if not 0 < trough <= 1:
        raise TraceError(f"daily trough {trough} must be in (0, 1]")
    horizon = days * 86400.0
    copies = math.ceil(horizon / trace.duration_seconds)
    offsets = np.repeat(np.arange(copies) * trace.duration_seconds, trace.size)
    arrival = np.tile(trace.arrival, copies) + offsets
    keep_probability = daily_curve(local_hours(trace.start, arrival, trace.zone), trough, peak_hour)
    rng = np.random.default_rng(seed)
    keep = (rng.random(arrival.size) < keep_probability) & (arrival < horizon)
    return replace(
        trace,
        arrival=arrival[keep],
        prompt_tokens=np.tile(trace.prompt_tokens, copies)[keep],
        output_tokens=np.tile(trace.output_tokens, copies)[keep],
        duration_seconds=horizon,
        synthetic_steps=(
            *trace.synthetic_steps,
            f"repeated for {days} d under a daily cosine curve (trough {trough:g} of the recorded rate, "
            f"peak at {peak_hour:g}:00 {trace.zone_name} local time), thinned with seed {seed}",
        ),
    )


def local_hours(start: datetime, seconds: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    """Local hour of day (fractional) of each moment ``seconds`` after ``start`` in ``zone``."""
    hour_index = np.floor(seconds / 3600.0).astype(np.int64) if seconds.size else np.zeros(0, np.int64)
    hours = int(hour_index.max()) + 1 if seconds.size else 1
    offsets = np.array(
        [
            (start + timedelta(hours=h)).astimezone(zone).utcoffset().total_seconds()  # type: ignore[union-attr]
            for h in range(hours)
        ]
    )
    midnight = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    since_midnight_utc = (start.astimezone(UTC) - midnight).total_seconds()
    hours_of_day: np.ndarray = ((since_midnight_utc + seconds + offsets[hour_index]) / 3600.0) % 24
    return hours_of_day


def shape(trace: Trace, spec: str, seed: int) -> Trace:
    """Apply a shaping spec: ``timescale:K``, ``daily:DAYS``, ``week`` (= daily:7), or ``none``."""
    kind, _, argument = spec.partition(":")
    try:
        if kind in ("", "none"):
            return trace
        if kind == "timescale":
            return time_scale(trace, float(argument))
        if kind == "daily":
            return daily_shape(trace, int(argument), seed)
        if kind == "week":
            return daily_shape(trace, 7, seed)
    except ValueError as error:
        if isinstance(error, TraceError):
            raise
        raise TraceError(f"shape {spec!r}: {error}") from None
    raise TraceError(f"shape {spec!r} is not known; allowed: none, timescale:K, daily:DAYS, week")


def restart(trace: Trace, start: datetime) -> Trace:
    """The same requests replayed from another start time; the recorded start is kept for the label."""
    recorded = trace.recorded_start or trace.start
    return replace(trace, start=start, recorded_start=recorded if start != recorded else None)


def in_zone(trace: Trace, zone_name: str) -> Trace:
    """The trace read on the stage's clock (labels and the daily curve's local hours)."""
    return replace(trace, zone_name=zone_name)


def thin(trace: Trace, share: float, seed: int) -> Trace:
    """Keep each request with probability ``share`` (a model version's traffic weight)."""
    if share >= 1.0:
        return trace
    keep = np.random.default_rng(seed).random(trace.size) < share
    return replace(
        trace,
        arrival=trace.arrival[keep],
        prompt_tokens=trace.prompt_tokens[keep],
        output_tokens=trace.output_tokens[keep],
    )


def with_warmup(trace: Trace, seconds: float) -> tuple[Trace, int]:
    """Prepend a copy of the trace's first ``seconds`` so the system starts in its own steady state.

    Returns the extended trace (starting ``seconds`` earlier) and how many warm-up requests lead it;
    callers drop those requests and the warm-up time from every figure.
    """
    if seconds <= 0:
        return trace, 0
    head = trace.arrival < seconds
    count = int(np.count_nonzero(head))
    extended = replace(
        trace,
        arrival=np.concatenate([trace.arrival[head], trace.arrival + seconds]),
        prompt_tokens=np.concatenate([trace.prompt_tokens[head], trace.prompt_tokens]),
        output_tokens=np.concatenate([trace.output_tokens[head], trace.output_tokens]),
        start=trace.start - timedelta(seconds=seconds),
        duration_seconds=trace.duration_seconds + seconds,
    )
    return extended, count
