"""Honest reports: vacuous comparisons and capacity shortfalls are named, gap closed is scheduling only."""

from __future__ import annotations

from planner.plan import capacity, capacity_notes, vacuous_notes
from planner.report import PolicySummary, fill_gap_closed
from planner.settings import PlannerSettings
from tests.unit.planner.conftest import make_profile, make_trace


def summary(name: str, attainment: float, gpu_hours: float, dollars: float) -> PolicySummary:
    return PolicySummary(
        name,
        100,
        100,
        {},
        0,
        0.1,
        0.2,
        0.3,
        0.0,
        attainment,
        attainment >= 0.95,
        gpu_hours,
        dollars,
        1.0,
        0,
        0,
    )


def test_vacuous_comparison_is_named_only_when_policies_do_not_differ() -> None:
    same = [summary("a", 0.0, 1, 1), summary("b", 0.0, 2, 2)]
    assert "VACUOUS COMPARISON" in vacuous_notes(same)[0]
    assert "no request meets it" in vacuous_notes(same)[0]
    assert vacuous_notes([summary("a", 0.5, 1, 1), summary("b", 0.9, 1, 1)]) == []


def test_gap_closed_uses_gpu_hours_and_skips_policies_that_serve_worse() -> None:
    rows = [
        summary("configured", 0.96, 6.0, 2.0),  # Spot: cheap dollars, but GPU-hours are what scheduling saves
        summary("worse", 0.80, 1.0, 0.5),  # cheaper by missing the SLO: no share
        summary("static peak", 0.97, 10.0, 8.0),
        summary("oracle", 0.96, 2.0, 1.6),
    ]
    fill_gap_closed(rows, "static peak", "oracle")
    by_name = {row.name: row.gap_closed for row in rows}
    assert by_name["configured"] == (10 - 6) / (10 - 2)
    assert by_name["worse"] is None
    assert by_name["oracle"] == 1.0


def test_capacity_shortfall_names_the_numbers_and_a_load_that_fits() -> None:
    # 10 requests/s, each 1,000 prompt tokens at 1 ms/token = 1 s of prefill work: ~10 replicas busy.
    profile = make_profile(per_sequence_seconds=0.0)
    arrivals = [i / 10 for i in range(600)]
    trace = make_trace(arrivals, [1000] * 600, [1] * 600, duration=60.0)
    settings = PlannerSettings(oracle_utilisations=(0.9, 0.5), oracle_window_seconds=60.0)
    found = capacity(trace, profile, settings, max_replicas=4)
    assert abs(found.peak_work_replicas - 10 / 0.9) < 0.05
    assert found.peak_replicas == 12
    assert found.peak_rate == 10.0
    assert abs(found.carried_rate - 4 * 0.9 / 1.0) < 0.01
    # Slowed by the factor, the busiest window keeps 4 replicas at the fit utilisation (0.6): 4*0.6/10.
    assert found.fitting_share == 0.24
    note = capacity_notes(trace, profile, settings, 4, "m")[0]
    assert "CAPACITY SHORTFALL (m)" in note
    assert "needs 12 replicas" in note
    assert "--shape thin:0.24" in note
    assert capacity_notes(trace, profile, settings, 12, "m") == []


def test_readme_has_the_block_make_plan_figures_rewrites() -> None:
    from planner.figures import END, README, START

    text = README.read_text(encoding="utf-8")
    assert text.index(START) < text.index(END)
