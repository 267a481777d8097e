"""Savings Plan commitment: the optimiser, the break-even formula, the rates file and the report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from config import StageConfig
from planner.cli import render
from planner.commitments import (
    CommitmentRatesError,
    break_even_utilisation,
    commitment_section,
    load_rates,
    optimal_commitment,
    recommend,
    total_cost,
    usage_curve,
)
from planner.plan import VersionPlan
from planner.policies import CONFIGURED, STATIC_PEAK
from planner.report import summarise
from planner.sim import GroupSpec, SimResult, Simulation

from .conftest import make_profile, make_setup, make_trace


def naive_cost(usage: list[float], hours: list[float], commitment: float, discount: float) -> float:
    """The billing rule written out hour by hour, independently of planner.commitments."""
    total = 0.0
    for used, length in zip(usage, hours, strict=True):
        covered = commitment / (1 - discount)
        on_demand = used - covered if used > covered else 0.0
        total += length * (commitment + on_demand)
    return total


def synthetic_curve(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A week-like curve: daily cosine, noise, some idle hours, a partial last hour."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(5, 200))
    hour = np.arange(size)
    usage = np.maximum(0.0, 10 + 8 * np.cos(2 * np.pi * (hour - 14) / 24) + rng.normal(0, 3, size))
    usage[rng.random(size) < 0.1] = 0.0
    usage = np.round(usage, 1)  # ties between hours, as whole node counts give
    hours = np.ones(size)
    hours[-1] = float(rng.uniform(0.1, 1.0))
    return usage, hours


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("discount", [0.1, 0.28, 0.36, 0.72])
def test_optimiser_matches_a_brute_force_search_over_commitments(seed: int, discount: float) -> None:
    usage, hours = synthetic_curve(seed)
    chosen = optimal_commitment(usage, hours, discount)
    chosen_cost = naive_cost(list(usage), list(hours), chosen, discount)
    # Brute force: every cent of commitment from 0 to the peak's discounted rate, plus every hour's level.
    grid = np.append(np.arange(0, usage.max() * (1 - discount) + 0.01, 0.01), usage * (1 - discount))
    costs = [naive_cost(list(usage), list(hours), float(level), discount) for level in grid]
    assert chosen_cost <= min(costs) + 1e-9
    assert total_cost(usage, hours, chosen, discount) == pytest.approx(chosen_cost, rel=1e-12)
    # Smallest of the cheapest: any commitment a cent below the chosen one costs strictly more.
    if chosen > 0.01:
        assert naive_cost(list(usage), list(hours), chosen - 0.01, discount) > chosen_cost


def test_break_even_utilisation_by_hand() -> None:
    # 36 % off: $0.64/h buys $1/h of On-Demand usage. Used 64 of 100 hours (64 %), it costs $64;
    # On-Demand for those 64 hours is also $64. At 65 hours used it saves, at 63 it loses.
    assert break_even_utilisation(0.36) == pytest.approx(0.64)
    for used_hours, sign in ((64, 0), (65, 1), (63, -1)):
        usage = np.array([1.0] * used_hours + [0.0] * (100 - used_hours))
        on_demand = float(usage.sum())
        committed = total_cost(usage, np.ones(100), 0.64, 0.36)
        assert committed == pytest.approx(64.0)
        assert np.sign(round(on_demand - committed, 9)) == sign


def test_usage_exactly_at_break_even_commits_nothing() -> None:
    # Used 64 % of the hours at 36 % off: every commitment up to $0.64/h costs the same as none, and
    # on a tie the smaller commitment (no risk) is chosen.
    usage = np.array([1.0] * 64 + [0.0] * 36)
    assert optimal_commitment(usage, np.ones(100), 0.36) == 0.0
    assert optimal_commitment(np.append(usage, 1.0), np.ones(101), 0.36) == pytest.approx(0.64)


def test_flat_curve_commits_fully() -> None:
    usage, hours = np.full(168, 3.0), np.ones(168)
    found = recommend(plan="p", discount=0.28, usage=usage, hours=hours, estimate=True)
    assert found.commitment_hourly == pytest.approx(3.0 * 0.72)
    assert found.utilisation == pytest.approx(1.0)
    assert found.saving == pytest.approx(168 * 3.0 * 0.28)


def test_zero_usage_commits_nothing() -> None:
    found = recommend(plan="p", discount=0.36, usage=np.zeros(168), hours=np.ones(168), estimate=True)
    assert found.commitment_hourly == 0.0
    assert found.cost_with == 0.0
    assert found.saving == 0.0


def test_peaky_curve_commits_to_the_base_not_the_peak() -> None:
    # 2 $/h all week, 10 $/h for 20 % of the hours: with 36 % off (break-even 64 %), covering the peak
    # is used 20 % of the time, so only the base is worth committing.
    usage = np.where(np.arange(100) < 20, 10.0, 2.0)
    assert optimal_commitment(usage, np.ones(100), 0.36) == pytest.approx(2.0 * 0.64)


def test_rates_are_labelled_estimates_under_the_verified_maxima() -> None:
    rates = load_rates()
    assert rates.verified_maximum == {"compute_savings_plan": 0.66, "ec2_instance_savings_plan": 0.72}
    for plan, plan_rates in rates.plans.items():
        assert plan_rates.estimate, f"{plan}: not verified at the source, so it must say estimate"
        assert all(
            0 < rate <= rates.verified_maximum[plan] for rate in plan_rates.discount_by_family.values()
        )
        assert {"g5", "g6", "g6e"} <= plan_rates.discount_by_family.keys()


def test_a_rate_above_the_verified_maximum_is_refused_with_file_and_field(tmp_path: Path) -> None:
    text = Path("data/commitment_rates.yaml").read_text().replace("g5: 0.36", "g5: 0.9")
    bad = tmp_path / "rates.yaml"
    bad.write_text(text)
    with pytest.raises(CommitmentRatesError) as error:
        load_rates(bad)
    message = str(error.value)
    assert str(bad) in message
    assert "plans.ec2_instance_savings_plan.discount_by_family.g5: 0.9" in message
    assert "0.72" in message


def run(groups: tuple[GroupSpec, ...], replicas: int, horizon: float) -> SimResult:
    setup = make_setup(make_profile(), replicas=replicas, horizon=horizon, groups=groups)
    return Simulation(setup, np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)).run()


def test_simulation_records_on_demand_instance_hours_per_hour() -> None:
    on_demand = GroupSpec("od", "g5.xlarge", False, 1, 1, 2, 10, 1.006, False)
    result = run((on_demand,), replicas=2, horizon=2.5 * 3600)
    assert list(result.hour_lengths) == [1.0, 1.0, 0.5]
    assert list(result.on_demand_instance_hours["g5.xlarge"]) == pytest.approx([2.0, 2.0, 1.0])
    usage, hours, types = usage_curve(result)
    assert types == {"g5.xlarge"}
    assert usage == pytest.approx([2 * 1.006] * 3)
    assert float(np.sum(usage * hours)) == pytest.approx(result.dollars)


def test_spot_nodes_are_not_in_the_commitment_curve() -> None:
    spot = GroupSpec("spot", "g5.xlarge", True, 1, 1, 2, 10, 0.4, False)
    result = run((spot,), replicas=2, horizon=3600)
    assert result.dollars > 0
    assert result.on_demand_instance_hours == {}
    assert usage_curve(result)[0] == pytest.approx([0.0])


def test_report_prices_each_policy_with_and_without_the_commitment(stages: dict[str, StageConfig]) -> None:
    on_demand = GroupSpec("od", "g5.xlarge", False, 1, 1, 2, 10, 1.006, False)
    configured = run((on_demand,), replicas=2, horizon=3 * 3600)
    static = run((replace(on_demand, min_size=3),), replicas=3, horizon=3 * 3600)
    rates = load_rates()
    section, best = commitment_section(
        results={CONFIGURED: configured, STATIC_PEAK: static}, sized_on=CONFIGURED, rates=rates
    )
    assert best is not None
    assert best.plan == "ec2_instance_savings_plan"
    # A flat 2 nodes x $1.006: commit to all of it at 36 % off.
    assert best.commitment_hourly == pytest.approx(2 * 1.006 * 0.64)
    with_static = 3 * 3 * 1.006 - 3 * 2 * 1.006 * 0.36  # the third node pays On-Demand
    assert f"| {CONFIGURED} | {configured.dollars:.2f} | {configured.dollars * 0.64:.2f} |" in section
    assert f"| {STATIC_PEAK} | {static.dollars:.2f} | {with_static:.2f} |" in section
    assert "break-even utilisation" in section
    assert "| 64% |" in section
    assert "(estimate)" in section
    assert "Under a week of usage" in section

    stage = stages["dev"]
    model = stage.models[0]
    trace = make_trace([], [], [], duration=3 * 3600)
    plan = VersionPlan(
        model=model,
        version=model.versions[0],
        trace=trace,
        profile=make_profile(),
        summaries=[summarise(CONFIGURED, configured, trace, 2.0, 0.95)],
        results={CONFIGURED: configured, STATIC_PEAK: static},
        oracle_utilisation=0.7,
        static_replicas=3,
        cold_start_seconds=300,
        notes=[],
    )
    report = render(stage, trace, [plan], seed=1, wall=0.0, rates=rates)
    assert "### Savings Plan commitment" in report
    assert "GPU $ without | GPU $ with commitment" in report
    assert f"{configured.dollars * 0.64:.2f}" in report
