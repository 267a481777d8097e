"""Request traces: loading (formats in planner.readers), labelled shaping, thinning and warm-up.

Every shaping step is recorded on the trace and printed as SYNTHETIC wherever results appear.
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from planner.readers import AZURE_COLUMNS, SIMPLE_COLUMNS, RawTrace, TraceError, read_trace

__all__ = ["AZURE_COLUMNS", "DEFAULT_TRACE", "SIMPLE_COLUMNS", "Trace", "TraceError", "load_trace"]

DEFAULT_TRACE = Path(__file__).resolve().parent.parent / "data" / "traces" / "AzureLLMInferenceTrace_conv.csv"


@dataclass(frozen=True)
class Trace:
    """Requests sorted by arrival; arrivals in seconds from ``start`` (UTC)."""

    arrival: np.ndarray  # float64 seconds
    # int32 from load_trace (8 bytes a request less than int64 in every copy of a 27M-request week; the
    # values are checked to fit there); int64 is accepted too.
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    start: datetime
    duration_seconds: float
    label: str
    synthetic_steps: tuple[str, ...] = field(default_factory=tuple)
    # The stage's clock for labels and the daily curve, and the recorded start when the trace is
    # replayed from another time (the arrivals between requests are unchanged, so it is not shaping).
    zone_name: str = "UTC"
    recorded_start: datetime | None = None
    # Prefix-block hash ids per request (Mooncake traces), kept for prefix-cache modelling.
    block_hashes: np.ndarray | None = None
    format_name: str = "simple"
    warnings: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return int(self.arrival.size)

    @property
    def is_synthetic(self) -> bool:
        return bool(self.synthetic_steps)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.zone_name)

    def select(self, which: np.ndarray) -> Trace:
        """The requests picked by a mask or index array, block hashes included."""
        hashes = None if self.block_hashes is None else self.block_hashes[which]
        return replace(
            self,
            arrival=self.arrival[which],
            prompt_tokens=self.prompt_tokens[which],
            output_tokens=self.output_tokens[which],
            block_hashes=hashes,
        )

    def shared_prefix_share(self) -> float | None:
        """Share of prompt blocks already seen in an earlier request (None without block hashes)."""
        if self.block_hashes is None:
            return None
        seen: set[int] = set()
        total = shared = 0
        for blocks in self.block_hashes.tolist():
            total += len(blocks)
            shared += sum(1 for block in blocks if block in seen)
            seen.update(blocks)
        return shared / total if total else 0.0

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
        return (
            f"{self.label} ({self.format_name}): {self.size:,} requests over {hours:.1f} h from {when}"
            f"{moved}{shaping}"
        )


def load_trace(path: Path, start: datetime | None = None) -> Trace:
    """Read a trace in any known format (detected from its first line); see planner.readers."""
    raw = read_trace(path)
    trace = _sorted(path, raw, start)
    del raw
    return_freed_memory()
    return trace


def _sorted(path: Path, raw: RawTrace, start: datetime | None) -> Trace:
    """The reader's columns as a Trace: sorted by arrival, token counts as int32."""
    order = np.argsort(raw.arrival, kind="stable")
    arrival = np.asarray(raw.arrival, dtype=np.float64)[order]
    # Whole minutes: a trace of 59.9 minutes covers the hour it was cut from.
    duration = max(60.0, math.ceil((float(arrival[-1]) + 1e-9) / 60) * 60)
    return Trace(
        arrival=arrival,
        prompt_tokens=_token_column(path, "prompt tokens", raw.prompt)[order],
        output_tokens=_token_column(path, "output tokens", raw.output)[order],
        start=raw.origin if start is None else start,
        duration_seconds=duration,
        label=path.name,
        block_hashes=None if raw.block_hashes is None else raw.block_hashes[order],
        format_name=raw.format_name,
        warnings=raw.warnings,
    )


def return_freed_memory() -> None:
    """Give the parser's freed heap back to the OS. glibc keeps it otherwise: after a 27M-row CSV that
    is ~0.7 GB still resident next to the 0.4 GB trace, and the pool's forked workers inherit it; a
    worker's runs of 1-2M requests leave their columns in the heap too (under glibc's mmap threshold)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim  # glibc only; elsewhere there is nothing to do
    except (AttributeError, OSError):
        return
    trim(0)


def _token_column(path: Path, what: str, values: np.ndarray) -> np.ndarray:
    """Token counts as int32 (every model's context is far below 2**31 tokens), or a TraceError."""
    counts = np.asarray(values, dtype=np.int64)
    ceiling = int(np.iinfo(np.int32).max)
    if counts.size and int(counts.max()) > ceiling:
        raise TraceError(f"{path}: {what} up to {int(counts.max()):,}; at most {ceiling:,} a request is read")
    return counts.astype(np.int32)


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
    hashes = None if trace.block_hashes is None else np.tile(trace.block_hashes, copies)[keep]
    return replace(
        trace,
        arrival=arrival[keep],
        prompt_tokens=np.tile(trace.prompt_tokens, copies)[keep],
        output_tokens=np.tile(trace.output_tokens, copies)[keep],
        block_hashes=hashes,
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


def thinned(trace: Trace, share: float, seed: int) -> Trace:
    """Keep each request with probability ``share`` (seeded): the rate falls, time of day and length stay."""
    if not 0 < share <= 1:
        raise TraceError(f"thin share {share} must be in (0, 1]")
    kept = thin(trace, share, seed)
    return replace(
        kept, synthetic_steps=(*trace.synthetic_steps, f"thinned to {share:g} of the requests (seed {seed})")
    )


def shape(trace: Trace, spec: str, seed: int) -> Trace:
    """Apply a shaping spec: ``timescale:K``, ``thin:K``, ``daily:DAYS``, ``week`` (daily:7) or ``none``."""
    kind, _, argument = spec.partition(":")
    try:
        if kind in ("", "none"):
            return trace
        if kind == "timescale":
            return time_scale(trace, float(argument))
        if kind == "thin":
            return thinned(trace, float(argument), seed)
        if kind == "daily":
            return daily_shape(trace, int(argument), seed)
        if kind == "week":
            return daily_shape(trace, 7, seed)
    except ValueError as error:
        if isinstance(error, TraceError):
            raise
        raise TraceError(f"shape {spec!r}: {error}") from None
    raise TraceError(f"shape {spec!r} is not known; allowed: none, timescale:K, thin:K, daily:DAYS, week")


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
    return trace.select(keep)


def with_warmup(trace: Trace, seconds: float) -> tuple[Trace, int]:
    """Prepend a copy of the trace's first ``seconds`` so the system starts in its own steady state.

    Returns the extended trace (starting ``seconds`` earlier) and how many warm-up requests lead it;
    callers drop those requests and the warm-up time from every figure.
    """
    if seconds <= 0:
        return trace, 0
    head = trace.arrival < seconds
    count = int(np.count_nonzero(head))
    # Each column written once into its final array: no index arrays or shifted copies on the way (at
    # 27M requests those were ~1.3 GB of temporaries next to the 0.43 GB result).
    arrival = np.empty(count + trace.size, dtype=trace.arrival.dtype)
    arrival[:count] = trace.arrival[head]
    np.add(trace.arrival, seconds, out=arrival[count:])
    hashes = (
        None if trace.block_hashes is None else np.concatenate([trace.block_hashes[head], trace.block_hashes])
    )
    extended = replace(
        trace,
        arrival=arrival,
        prompt_tokens=np.concatenate([trace.prompt_tokens[head], trace.prompt_tokens]),
        output_tokens=np.concatenate([trace.output_tokens[head], trace.output_tokens]),
        block_hashes=hashes,
        start=trace.start - timedelta(seconds=seconds),
        duration_seconds=trace.duration_seconds + seconds,
    )
    return extended, count
