"""Per-policy figures, the comparison table, the plot over time and the monthly cost estimate."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from planner.lean import bin_seconds, figures_of, first_token_key, ttft_bins
from planner.sim import Outcome, SimResult
from planner.trace import Trace

DROP_REASONS = {
    Outcome.DROPPED_TOO_LONG: "too long",
    Outcome.DROPPED_NO_REPLICA: "no replica",
    Outcome.DROPPED_SPOT: "spot",
    Outcome.DROPPED_TIMEOUT: "timeout",
    Outcome.DROPPED_TERMINATED: "terminated",
}


@dataclass
class PolicySummary:
    name: str
    offered: int
    served: int
    dropped: dict[str, int]
    in_flight: int
    ttft_p50: float
    ttft_p95: float
    ttft_p99: float
    queue_wait_p95: float
    slo_attainment: float
    meets_slo: bool
    gpu_hours: float
    dollars: float
    dollars_per_million_output: float
    node_launches: int
    spot_interruptions: int
    gap_closed: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


def summarise(
    name: str, result: SimResult, trace: Trace, slo_seconds: float, slo_quantile: float
) -> PolicySummary:
    """The policy's row from the run's figures (planner.lean: reduced now, or in the worker if lean)."""
    figures = figures_of(result, trace, slo_seconds)
    offered = figures.offered
    attainment = figures.within_slo / offered if offered else 1.0
    served_output = figures.served_output_tokens
    dropped = {label: figures.outcome_counts[code] for code, label in DROP_REASONS.items()}
    return PolicySummary(
        name=name,
        offered=offered,
        served=figures.served,
        dropped={label: count for label, count in dropped.items() if count},
        in_flight=figures.outcome_counts[Outcome.IN_FLIGHT],
        ttft_p50=figures.ttft_p50,
        ttft_p95=figures.ttft_p95,
        ttft_p99=figures.ttft_p99,
        queue_wait_p95=figures.queue_wait_p95,
        slo_attainment=attainment,
        meets_slo=attainment >= slo_quantile,
        gpu_hours=result.gpu_seconds / 3600,
        dollars=result.dollars,
        dollars_per_million_output=result.dollars / served_output * 1e6 if served_output else math.nan,
        node_launches=result.node_launches,
        spot_interruptions=result.spot_interruptions,
    )


def fill_gap_closed(summaries: list[PolicySummary], static_name: str, oracle_name: str) -> None:
    """Share of the static-peak-to-oracle GPU-hour gap each policy closes (1 = as lean as the oracle).

    GPU-hours, not dollars: this is the scheduling part alone. The price mix (Spot vs on-demand) is
    the separate $/GPU-h column. A policy below the oracle's SLO attainment gets no share: being
    cheaper by serving worse is not closing the gap.
    """
    by_name = {summary.name: summary for summary in summaries}
    if static_name not in by_name or oracle_name not in by_name:
        return
    static = by_name[static_name].gpu_hours
    oracle = by_name[oracle_name]
    gap = static - oracle.gpu_hours
    for summary in summaries:
        # A gap under 5 % of the static GPU-hours is noise: the share of it would be meaningless.
        comparable = summary.slo_attainment >= oracle.slo_attainment - 0.005
        summary.gap_closed = (
            (static - summary.gpu_hours) / gap if gap > 0.05 * static and comparable else None
        )


def _seconds(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def table(summaries: list[PolicySummary], slo_seconds: float) -> str:
    header = (
        "| policy | served | dropped | in flight | TTFT p50 s | p95 s | p99 s | queue p95 s | "
        f"under {slo_seconds:g} s | meets SLO | GPU-h | $ | $/GPU-h | $/M out | gap closed (GPU-h) |"
    )
    lines = [header, "|" + "---|" * 15]
    for s in summaries:
        dropped = f"{s.dropped_total:,}" + (
            " (" + ", ".join(f"{k} {v:,}" for k, v in s.dropped.items()) + ")" if s.dropped else ""
        )
        gap = "-" if s.gap_closed is None else f"{s.gap_closed:.0%}"
        per_million = (
            "-" if math.isnan(s.dollars_per_million_output) else f"{s.dollars_per_million_output:.2f}"
        )
        per_gpu_hour = f"{s.dollars / s.gpu_hours:.2f}" if s.gpu_hours else "-"
        lines.append(
            f"| {s.name} | {s.served:,} | {dropped} | {s.in_flight:,} | {_seconds(s.ttft_p50)} | "
            f"{_seconds(s.ttft_p95)} | {_seconds(s.ttft_p99)} | {_seconds(s.queue_wait_p95)} | "
            f"{s.slo_attainment:.1%} | {'yes' if s.meets_slo else 'no'} | {s.gpu_hours:.1f} | "
            f"{s.dollars:.2f} | {per_gpu_hour} | {per_million} | {gap} |"
        )
    return "\n".join(lines)


def ttft_p95_by_bin(result: SimResult, trace: Trace, width: float) -> tuple[np.ndarray, np.ndarray]:
    """TTFT p95 of the requests arriving in each bin (dropped ones count as never answered); a lean
    result's series was reduced in its worker at the plot's bin width."""
    if result.figures is None:
        bins = ttft_bins(result.first_token, trace, width)
        return bins.centres, bins.values
    found = result.figures.ttft_bins
    if found is None or found.width != width or result.figures.offered != trace.size:
        raise ValueError(f"lean result has no TTFT series in {width:g} s bins of {trace.size:,} requests")
    return found.centres, found.values


def offered_load(trace: Trace, width: float) -> tuple[np.ndarray, np.ndarray]:
    bins = max(1, math.ceil(trace.duration_seconds / width))
    index = np.minimum((trace.arrival // width).astype(np.int64), bins - 1)
    return np.arange(bins) * width + width / 2, np.bincount(index, minlength=bins) / width


@dataclass(frozen=True)
class PlotPanel:
    title: str
    trace: Trace
    slo_seconds: float
    results: dict[str, SimResult]
    # (seconds from the trace's start, off-hours now) switch points, shaded on every axis.
    offhours: tuple[tuple[float, bool], ...] = ((0.0, False),)


def off_spans(switches: tuple[tuple[float, bool], ...], horizon: float) -> list[tuple[float, float]]:
    """Off-hours intervals (seconds from the start) within the horizon."""
    ends = [moment for moment, _ in switches[1:]] + [horizon]
    return [(moment, end) for (moment, off), end in zip(switches, ends, strict=True) if off and end > moment]


def same_as(results: dict[str, SimResult]) -> dict[str, str]:
    """For each policy whose replica series equals an earlier one's, the earlier policy's name."""
    seen: list[tuple[str, SimResult]] = []
    twins: dict[str, str] = {}
    for name, result in results.items():
        for other, earlier in seen:
            if np.array_equal(result.series_ready, earlier.series_ready) and _first_token_key(
                result
            ) == _first_token_key(earlier):
                twins[name] = other
                break
        else:
            seen.append((name, result))
    return twins


def _first_token_key(result: SimResult) -> str:
    if result.figures is not None:
        return result.figures.first_token_key
    return first_token_key(result.first_token)


def plot(panels: list[PlotPanel], path: Path, title: str, requested_bin: float) -> None:
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(3, len(panels), figsize=(7 * len(panels), 10), squeeze=False, sharex="col")
    for column, panel in enumerate(panels):
        zone = panel.trace.zone
        origin = float(mdates.date2num(panel.trace.start))  # type: ignore[no-untyped-call]

        def at(seconds: np.ndarray | float, origin: float = origin) -> np.ndarray:
            return origin + np.asarray(seconds) / 86400.0

        width = bin_seconds(panel.trace.duration_seconds, requested_bin)
        load_axis, replica_axis, ttft_axis = axes[0][column], axes[1][column], axes[2][column]
        centres, rate = offered_load(panel.trace, width)
        load_axis.plot(at(centres), rate, color="black")
        load_axis.set_title("\n".join(textwrap.wrap(panel.title, 70)), fontsize=9)
        load_axis.set_ylabel("offered load, requests/s")
        twins = same_as(panel.results)
        for index, (name, result) in enumerate(panel.results.items()):
            colour = f"C{index}"
            # A series equal to an earlier one is drawn dotted on top and named, so it is not hidden.
            style = ":" if name in twins else "-"
            label = f"{name} (= {twins[name]})" if name in twins else name
            replica_axis.step(
                at(result.series_time), result.series_desired, where="post", color=colour, ls="--", lw=0.8
            )
            replica_axis.step(
                at(result.series_time),
                result.series_ready,
                where="post",
                color=colour,
                ls=style,
                lw=1.6,
                label=label,
            )
            centres, p95 = ttft_p95_by_bin(result, panel.trace, width)
            ttft_axis.plot(at(centres), np.minimum(p95, 1e4), color=colour, ls=style, lw=1.4, label=label)
        spans = off_spans(panel.offhours, panel.trace.duration_seconds)
        for axis in (load_axis, replica_axis, ttft_axis):
            for first, last in spans:
                axis.axvspan(at(first), at(last), color="grey", alpha=0.15, lw=0)
        replica_axis.set_ylabel("replicas (solid ready, dashed desired)")
        replica_axis.legend(fontsize=7, loc="upper left")
        ttft_axis.axhline(panel.slo_seconds, color="red", ls=":", lw=1, label="SLO")
        ttft_axis.set_yscale("log")
        ttft_axis.set_ylabel(f"TTFT p95 per {width / 60:g} min, s")
        long = panel.trace.duration_seconds > 2 * 86400
        ttft_axis.xaxis.set_major_locator(mdates.AutoDateLocator(tz=zone))  # type: ignore[no-untyped-call]
        formatter = mdates.DateFormatter("%a %H:%M" if long else "%H:%M", tz=zone)  # type: ignore[no-untyped-call]
        ttft_axis.xaxis.set_major_formatter(formatter)
        shaded = ", off-hours shaded" if spans else ""
        ttft_axis.set_xlabel(f"local time ({zone.key}){shaded}")
    figure.suptitle("\n".join(textwrap.wrap(title, 80 * len(panels))), fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
