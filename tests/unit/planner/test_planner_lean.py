"""Lean results (planner/lean.py): the same report, notes and plot series as full results, without
per-request columns in the planning process."""

from __future__ import annotations

import pickle
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from config import load_stages
from config.stage import StageConfig
from planner import cli
from planner.clock import resolve_start
from planner.commitments import commitment_section, load_rates
from planner.digest import case_inputs
from planner.lean import bin_seconds, ttft_bins
from planner.plan import _SHARED_TRACES, Replay, VersionPlan, plan_stage
from planner.policies import CONFIGURED
from planner.report import same_as, summarise, ttft_p95_by_bin
from planner.settings import PlannerSettings
from planner.trace import Trace, in_zone, load_trace, restart
from tests.unit.planner.conftest import write_conversation_trace


def _digest_case(name: str) -> tuple[StageConfig, Trace, PlannerSettings]:
    """A golden digest case (off-hours, Spot notices and capacity failures, the oracle search, a re-plan)."""
    return case_inputs(name)


def _mooncake_case(folder: Path) -> tuple[StageConfig, Trace, PlannerSettings]:
    """Shared prefixes and every routing policy: the prefix-cache hit rates come from the runs too."""
    path = write_conversation_trace(folder)
    stage = load_stages()["dev"]
    recorded = load_trace(path)
    trace = in_zone(restart(recorded, resolve_start(None, recorded.start, stage.offhours)), "UTC")
    settings = replace(
        PlannerSettings(), routing_policies=("least_outstanding", "prefix_affinity", "round_robin")
    )
    return stage, trace, settings


def _plot_series(plan: VersionPlan, settings: PlannerSettings) -> list[object]:
    """Every series the plot draws from a plan's results (planner.report.plot)."""
    width = bin_seconds(plan.trace.duration_seconds, settings.plot_bin_seconds)
    series: list[object] = [same_as(plan.results), plan.offhours]
    for name, result in plan.results.items():
        centres, p95 = ttft_p95_by_bin(result, plan.trace, width)
        series += [name, centres, p95, result.series_time, result.series_desired, result.series_ready]
    return series


def _equal(left: list[object], right: list[object]) -> bool:
    if len(left) != len(right):
        return False
    for a, b in zip(left, right, strict=True):
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            if not np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True):
                return False
        elif a != b:
            return False
    return True


def _assert_same_figures(
    stage: StageConfig,
    trace: Trace,
    full: list[VersionPlan],
    lean: list[VersionPlan],
    settings: PlannerSettings,
) -> None:
    rates = load_rates()
    assert [plan.title for plan in full] == [plan.title for plan in lean]
    for one, other in zip(full, lean, strict=True):
        # repr of the summaries: every float to its last bit, NaN equal to NaN.
        assert repr([asdict(s) for s in one.summaries]) == repr([asdict(s) for s in other.summaries])
        assert one.notes == other.notes
        assert repr(one.routing) == repr(other.routing)
        assert _equal(_plot_series(one, settings), _plot_series(other, settings))
        sections = [
            commitment_section(results=plan.results, sized_on=CONFIGURED, rates=rates)
            for plan in (one, other)
        ]
        assert sections[0][0] == sections[1][0]
    # The whole report (tables, notes, routing, commitments, monthly estimate) to the character.
    assert cli.render(stage, trace, full, 1, 0.0, rates) == cli.render(stage, trace, lean, 1, 0.0, rates)


def _assert_lean(plans: list[VersionPlan]) -> None:
    for plan in plans:
        for name, result in plan.results.items():
            assert result.lean, name
            columns = (result.first_token, result.admitted, result.finished, result.outcome)
            assert [column.size for column in columns] == [0, 0, 0, 0], name
            assert result.cached_tokens is None, name


def test_lean_pool_gives_the_full_plans_figures_on_the_golden_spot_case() -> None:
    stage, trace, settings = _digest_case("prod-night-spot")
    full = plan_stage(stage, trace, settings, seed=1, workers=1, lean=False)
    lean = plan_stage(stage, trace, settings, seed=1, workers=2)  # a pool is lean by default
    assert len(full) == 2  # both prod models, planned side by side on the pool
    for plan in full:
        assert all(
            not result.lean and result.first_token.size == plan.trace.size for result in plan.results.values()
        )
    _assert_lean(lean)
    _assert_same_figures(stage, trace, full, lean, settings)


def test_lean_routing_comparison_keeps_the_prefix_hit_rates(tmp_path: Path) -> None:
    stage, trace, settings = _mooncake_case(tmp_path)
    full = plan_stage(stage, trace, settings, seed=1, workers=1, lean=False)
    lean = plan_stage(stage, trace, settings, seed=1, workers=1, lean=True)
    _assert_lean(lean)
    routing = lean[0].routing
    assert routing is not None
    assert routing.prefix_cache_modelled
    assert any(row.prefix_hit_rate for row in routing.rows)  # hits were modelled, and survive reduction
    _assert_same_figures(stage, trace, full, lean, settings)


def test_a_lean_result_refuses_figures_for_another_trace_or_slo() -> None:
    stage, trace, settings = _digest_case("dev-short")
    plan = plan_stage(stage, trace, settings, seed=1, workers=1, lean=True)[0]
    result = plan.results[CONFIGURED]
    slo = plan.model.slo.ttft_p95_seconds
    with pytest.raises(ValueError, match="lean result reduced for"):
        summarise(CONFIGURED, result, plan.trace, slo + 1, 0.95)
    with pytest.raises(ValueError, match="no TTFT series"):
        ttft_p95_by_bin(result, plan.trace, 1234.0)


def test_a_replay_of_a_trace_the_workers_inherited_ships_without_its_columns() -> None:
    _, trace, _ = _digest_case("dev-short")
    replay = Replay(trace, 2700.0)
    columns = trace.arrival.nbytes + trace.prompt_tokens.nbytes + trace.output_tokens.nbytes
    assert len(pickle.dumps(replay.shipped())) > columns  # not registered: the columns go along
    _SHARED_TRACES[id(trace)] = trace
    try:
        shipped = replay.shipped()
        assert shipped.trace is None
        assert len(pickle.dumps(shipped)) < 2_000
        assert shipped.measured() is trace  # what a forked worker finds under the key
        assert shipped.extended()[0].size == replay.extended()[0].size
    finally:
        _SHARED_TRACES.pop(id(trace))


@pytest.mark.parametrize("shuffled", [False, True])
def test_ttft_bins_are_each_bins_p95_with_unanswered_requests_as_never(shuffled: bool) -> None:
    """The per-bin TTFT p95 of the plot, in or out of arrival order, against a plain per-bin reference."""
    rng = np.random.default_rng(3)
    arrival = np.sort(rng.uniform(0, 3600, 5000))
    first_token = arrival + rng.exponential(2.0, arrival.size)
    # Never answered: 30 % in the first half hour (those bins' p95 is a drop), none after.
    first_token[(rng.random(arrival.size) < 0.3) & (arrival < 1800)] = np.nan
    if shuffled:
        order = rng.permutation(arrival.size)
        arrival, first_token = arrival[order], first_token[order]
    tokens = np.ones(arrival.size, dtype=np.int32)
    trace = Trace(arrival, tokens, tokens, datetime(2026, 1, 5), 3600.0, "bins")
    found = ttft_bins(first_token, trace, 300.0)
    for position in range(12):
        inside = (arrival // 300.0) == position
        ttft = np.where(np.isnan(first_token[inside]), np.inf, first_token[inside] - arrival[inside])
        assert found.values[position] == np.percentile(ttft, 95, method="higher")
    assert np.isinf(found.values[:6]).all()
    assert np.isfinite(found.values[6:]).all()
