"""Lean results: a run's per-request columns reduced, in the process that ran it, to what the report,
the plots and the notes read (simspec.RequestFigures), so that the planning process never holds the
per-request columns of every run (a 27M-request run's are ~0.7 GB; a plan has ~15 runs per version).

Both modes compute every figure here, from the same columns with the same numpy calls: a full result
is reduced when a figure is asked for, a lean one was reduced before it left the worker. So the two
give bit-identical summaries, notes and plot series (tests/unit/planner/test_planner_lean.py).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace

import numpy as np

from planner.entities import Outcome
from planner.simspec import RequestFigures, SimResult, TtftBins
from planner.trace import Trace

EMPTY = np.zeros(0)


@dataclass(frozen=True)
class Reduction:
    """What a pooled run reduces its per-request columns to: the version's TTFT SLO and the plot's bin."""

    slo_seconds: float
    bin_width: float


def bin_seconds(horizon: float, requested: float) -> float:
    """The plot's bin width: ``requested`` seconds, or by default one minute per hour of trace."""
    if requested > 0:
        return requested
    return max(60.0, math.ceil(horizon / 60 / 60) * 60)


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else math.nan


def first_token_key(first_token: np.ndarray) -> str:
    """A key equal for two first-token columns exactly when np.array_equal(nan_to_num(., nan=-1)) holds
    (the + 0.0 turns -0.0, equal to 0.0, into 0.0; the length is in the bytes)."""
    column = np.nan_to_num(np.asarray(first_token, dtype=np.float64), nan=-1.0)
    column += 0.0  # in place: one copy of the column, hashed through its buffer
    return hashlib.sha256(np.ascontiguousarray(column).data).hexdigest()


def ttft_bins(first_token: np.ndarray, trace: Trace, width: float) -> TtftBins:
    """TTFT p95 of the requests arriving in each bin (dropped ones count as never answered)."""
    bins = max(1, math.ceil(trace.duration_seconds / width))
    # Built in place (a 27M-request run's reduction must not outgrow its simulation): the bin of each
    # request, and its TTFT with the unanswered ones (NaN first token, so NaN here) as inf.
    index = (trace.arrival // width).astype(np.int64)
    np.minimum(index, bins - 1, out=index)
    ttft = first_token - trace.arrival
    ttft[np.isnan(ttft)] = np.inf
    if not bool(np.all(index[1:] >= index[:-1])):  # a trace is sorted by arrival, so this is rare
        order = np.argsort(index, kind="stable")
        index, ttft = index[order], ttft[order]
    splits = np.searchsorted(index, np.arange(1, bins))
    del index
    values = np.full(bins, np.nan)
    for position, chunk in enumerate(np.split(ttft, splits)):
        if chunk.size:
            # "higher" picks a sample instead of interpolating, which keeps inf (drops) well defined.
            values[position] = np.percentile(chunk, 95, method="higher")
    return TtftBins(width, np.arange(bins) * width + width / 2, values)


def request_figures(
    result: SimResult, trace: Trace, slo_seconds: float, bin_width: float | None = None
) -> RequestFigures:
    """Reduce a full result's per-request columns (on the measured ``trace``'s requests)."""
    if result.lean:
        raise ValueError("request_figures needs a full result; this one is lean (its columns are reduced)")
    if result.first_token.size != trace.size:
        raise ValueError(f"result has {result.first_token.size:,} requests, the trace {trace.size:,}")
    outcome = result.outcome
    served = outcome == Outcome.SERVED
    # One per-request temporary at a time (a 27M-request run's reduction must not outgrow its
    # simulation): each is dropped once its figures are taken.
    delay = result.first_token - trace.arrival
    first_token_known = ~np.isnan(result.first_token)
    within = int(np.count_nonzero(first_token_known & (delay <= slo_seconds)))
    ttft = delay[first_token_known]
    del delay, first_token_known
    ttft_percentiles = [_percentile(ttft, q) for q in (50, 95, 99)]
    del ttft
    admitted = ~np.isnan(result.admitted)
    queue_wait_p95 = _percentile((result.admitted - trace.arrival)[admitted], 95)
    hit_rate = None
    if result.cached_tokens is not None:
        prompt = int(trace.prompt_tokens[admitted].sum())
        hit_rate = float(result.cached_tokens[admitted].sum()) / prompt if prompt else 0.0
    del admitted
    return RequestFigures(
        offered=trace.size,
        slo_seconds=slo_seconds,
        served=int(np.count_nonzero(served)),
        outcome_counts=tuple(int(np.count_nonzero(outcome == code)) for code in Outcome),
        ttft_p50=ttft_percentiles[0],
        ttft_p95=ttft_percentiles[1],
        ttft_p99=ttft_percentiles[2],
        queue_wait_p95=queue_wait_p95,
        within_slo=within,
        served_output_tokens=int(trace.output_tokens[served].sum()),
        first_token_key=first_token_key(result.first_token),
        prefix_hit_rate=hit_rate,
        ttft_bins=None if bin_width is None else ttft_bins(result.first_token, trace, bin_width),
    )


def figures_of(result: SimResult, trace: Trace, slo_seconds: float) -> RequestFigures:
    """The result's reduced figures: a lean result's own (checked to be of this trace and SLO), or a
    full result's reduced now."""
    if result.figures is None:
        return request_figures(result, trace, slo_seconds)
    figures = result.figures
    if figures.offered != trace.size or figures.slo_seconds != slo_seconds:
        raise ValueError(
            f"lean result reduced for {figures.offered:,} requests at a {figures.slo_seconds:g} s SLO, "
            f"asked for {trace.size:,} at {slo_seconds:g} s"
        )
    return figures


def lean_result(result: SimResult, trace: Trace, reduction: Reduction) -> SimResult:
    """The result with its per-request columns replaced by their figures (``trace``: the measured one)."""
    return stripped(result, request_figures(result, trace, reduction.slo_seconds, reduction.bin_width))


def stripped(result: SimResult, figures: RequestFigures) -> SimResult:
    """The result without its per-request columns, carrying ``figures`` (reduced from those columns)."""
    return replace(
        result,
        first_token=EMPTY,
        admitted=EMPTY,
        finished=EMPTY,
        outcome=np.zeros(0, dtype=np.int8),
        cached_tokens=None,
        figures=figures,
    )
