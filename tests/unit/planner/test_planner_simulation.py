"""Whole-simulation properties: conservation, determinism, and the oracle as a lower bound."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from config import StageConfig
from planner.plan import plan_version, simulate, simulate_repriced
from planner.policies import base_setup, replicas_per_window, window_work
from planner.settings import PlannerSettings
from planner.sim import Outcome
from tests.unit.planner.conftest import make_profile, poisson_trace

# Fewer oracle sizings and a short warm-up keep these runs to a fraction of a second.
FAST = PlannerSettings(oracle_utilisations=(0.9, 0.7, 0.5, 0.3), warmup_seconds=300)


def _counts_add_up(outcome: np.ndarray, first_token: np.ndarray, finished: np.ndarray) -> None:
    served = outcome == Outcome.SERVED
    assert np.all(~np.isnan(finished[served])), "a served request has a finish time"
    assert np.all(np.isnan(finished[~served])), "only served requests finish"
    assert np.all(first_token[served] <= finished[served])
    known = {int(code) for code in Outcome}
    assert set(np.unique(outcome).tolist()) <= known


@pytest.mark.parametrize("stage_name", ["dev", "staging", "prod"])
def test_every_request_is_served_dropped_with_a_reason_or_in_flight(
    stages: dict[str, StageConfig], stage_name: str
) -> None:
    stage = stages[stage_name]
    model = stage.models[0]
    trace = poisson_trace(3.0, 1200, seed=3)
    # Heavy Spot interruptions and off-hours in the middle exercise every drop path.
    settings = replace(FAST, spot_interruptions_per_node_hour=3.0)
    setup = replace(
        base_setup(stage, model, model.versions[0], trace, settings, seed=5),
        offhours=((0.0, False), (400.0, True), (800.0, False)),
    )
    result = simulate(setup, trace)
    assert result.outcome.size == trace.size
    _counts_add_up(result.outcome, result.first_token, result.finished)
    assert np.count_nonzero(result.outcome == Outcome.SERVED) > 0


def test_same_seed_same_result_and_seed_matters_for_spot(stages: dict[str, StageConfig]) -> None:
    stage = stages["prod"]
    model = stage.models[0]
    trace = poisson_trace(4.0, 900, seed=11)
    settings = replace(FAST, spot_interruptions_per_node_hour=4.0)

    def outcome(seed: int) -> tuple[np.ndarray, float]:
        result = simulate(base_setup(stage, model, model.versions[0], trace, settings, seed), trace)
        return np.nan_to_num(result.first_token, nan=-1.0), result.dollars

    first, again, other = outcome(1), outcome(1), outcome(2)
    assert np.array_equal(first[0], again[0])
    assert first[1] == again[1]
    assert not (np.array_equal(first[0], other[0]) and first[1] == other[1])


def _day_curve(t: np.ndarray) -> np.ndarray:
    return 0.5 + 2.5 * (np.sin(t / 600) > 0)


@pytest.mark.parametrize(
    ("name", "rate"),
    [("steady", 1.5), ("step bursts", _day_curve), ("ramp", lambda t: 0.2 + t / 1800 * 3.0)],
)
def test_oracle_never_costs_more_than_a_policy_meeting_the_same_slo(
    stages: dict[str, StageConfig], name: str, rate: object
) -> None:
    stage = stages["prod"]
    model = stage.models[0]
    trace = poisson_trace(rate, 1800, seed=len(name))  # type: ignore[arg-type]
    plan = plan_version(stage, model, model.versions[0], trace, FAST, seed=1)
    oracle = next(summary for summary in plan.summaries if summary.name == "oracle")
    for summary in plan.summaries:
        if summary.slo_attainment >= oracle.slo_attainment and summary.name != "oracle":
            assert oracle.dollars <= summary.dollars + 1e-9, f"{name}: oracle costs more than {summary.name}"


def test_parallel_versions_give_the_same_plans_as_one_process(stages: dict[str, StageConfig]) -> None:
    from planner.plan import plan_stage

    stage = stages["staging"]  # two versions of one model: two jobs
    trace = poisson_trace(2.0, 900, seed=4)
    counted: list[int] = []
    one = plan_stage(stage, trace, FAST, seed=3, fit_load=False)
    two = plan_stage(stage, trace, FAST, seed=3, progress=counted.append, fit_load=False, workers=2)
    assert [plan.title for plan in one] == [plan.title for plan in two]
    for first, second in zip(one, two, strict=True):
        assert [s.slo_attainment for s in first.summaries] == [s.slo_attainment for s in second.summaries]
        assert [s.dollars for s in first.summaries] == [s.dollars for s in second.summaries]
    assert sum(counted) > 0  # progress crossed the process boundary


def test_progress_total_bounds_the_simulated_requests(stages: dict[str, StageConfig]) -> None:
    from planner.plan import expected_requests, plan_stage

    stage = stages["prod"]
    trace = poisson_trace(2.0, 900, seed=8)
    counted: list[int] = []
    plan_stage(stage, trace, FAST, seed=1, progress=counted.append, fit_load=False)
    total = expected_requests(stage, trace, FAST, None)
    # An upper bound that is not wildly off: the bar neither overruns nor sits at a tiny fraction.
    assert 0.5 * total <= sum(counted) <= total


def _same(first: object, second: object) -> bool:
    left, right = vars(first), vars(second)
    return (
        left.keys() == right.keys()
        and all(
            np.array_equal(value, right[key], equal_nan=value.dtype.kind == "f")
            if isinstance(value, np.ndarray)
            else value == right[key]
            for key, value in left.items()
            if key not in ("on_demand_instance_hours", "events")
        )
        and all(
            np.array_equal(value, right["on_demand_instance_hours"][key])
            for key, value in left["on_demand_instance_hours"].items()
        )
        and left["on_demand_instance_hours"].keys() == right["on_demand_instance_hours"].keys()
    )


def test_all_on_demand_priced_from_the_configured_run_equals_simulating_it(
    stages: dict[str, StageConfig],
) -> None:
    from planner.plan import simulate_repriced
    from planner.policies import group_specs

    stage = stages["prod"]
    model = stage.models[0]
    version = model.versions[0]
    trace = poisson_trace(3.0, 1800, seed=12)
    calm = replace(FAST, spot_interruptions_per_node_hour=0.0)
    configured = base_setup(stage, model, version, trace, calm, seed=1)
    on_demand = replace(configured, groups=group_specs(stage, version, all_on_demand=True))
    assert configured.groups != on_demand.groups  # the Spot group really changes
    _, derived = simulate_repriced(configured, trace, None, 0, on_demand.groups)
    assert derived is not None, "no Spot draw reached the run, so it can be priced on-demand"
    assert _same(derived, simulate(on_demand, trace))
    # With interruptions drawn inside the horizon, the run depended on Spot: it must be simulated.
    stormy = base_setup(stage, model, version, trace, replace(FAST, spot_interruptions_per_node_hour=5.0), 1)
    assert simulate_repriced(stormy, trace, None, 0, on_demand.groups)[1] is None


def test_a_run_with_a_spot_rebalance_is_not_repriced_and_a_calm_one_with_the_lead_set_still_is(
    stages: dict[str, StageConfig],
) -> None:
    from planner.policies import group_specs
    from planner.sim import Simulation

    stage = stages["prod"]
    model = stage.models[0]
    version = model.versions[0]
    trace = poisson_trace(3.0, 1800, seed=12)
    on_demand = group_specs(stage, version, all_on_demand=True)
    stormy = replace(FAST, spot_interruptions_per_node_hour=5.0, spot_rebalance_lead_seconds=600.0)
    setup = replace(base_setup(stage, model, version, trace, stormy, seed=1), spot_rebalance_action="drain")
    sim = Simulation(setup, trace.arrival, trace.prompt_tokens, trace.output_tokens)
    sim.run()
    assert any(node.cordoned for node in sim.nodes), "a rebalance recommendation reached a node"
    assert sim.spot_draws > 0
    assert sim.repriced(on_demand) is None
    # The rebalance settings alone (no notice drawn in the horizon) do not stop the repricing, and it
    # still equals simulating all on-demand.
    calm = replace(stormy, spot_interruptions_per_node_hour=0.0)
    configured = replace(
        base_setup(stage, model, version, trace, calm, seed=1), spot_rebalance_action="drain"
    )
    _, derived = simulate_repriced(configured, trace, None, 0, on_demand)
    assert derived is not None
    assert _same(derived, simulate(replace(configured, groups=on_demand), trace))


def test_progress_total_counts_a_capacity_short_versions_fitted_replan(
    stages: dict[str, StageConfig],
) -> None:
    from planner.plan import expected_requests, plan_stage

    stage = stages["dev"]
    trace = poisson_trace(5.0, 900, seed=8)  # beyond dev's max_replicas: the version is planned again thinned
    counted: list[int] = []
    plans = plan_stage(stage, trace, FAST, seed=1, progress=counted.append)
    assert [plan.load_factor for plan in plans] == [None, 0.25]
    without = expected_requests(stage, trace, FAST, None, seed=1)
    total = expected_requests(stage, trace, FAST, None, seed=1, fit_load=True)
    assert total == int(1.25 * without)  # the re-plan replays a quarter of the requests
    # An upper bound (the bar never overruns): capped oracle sizings share one simulation here.
    assert sum(counted) <= total


def test_sizings_from_window_work_equal_sizings_from_the_trace() -> None:
    """A plan reads its sizings from the window work prepared once (plan.prepare_run), not the trace."""
    trace = poisson_trace(lambda t: 2.0 + 1.5 * np.sin(t / 900.0), 7200.0, seed=5)
    profile = make_profile()
    work = window_work(trace, profile, 300.0)
    for utilisation in (0.9, 0.6, 0.3):
        from_trace = replicas_per_window(trace, profile, utilisation, 300.0, 12)
        assert from_trace.max() > 1  # the load varies: the comparison covers more than the floor
        assert np.array_equal(replicas_per_window(work, profile, utilisation, 300.0, 12), from_trace)
    with pytest.raises(ValueError, match="another window or profile"):
        replicas_per_window(work, profile, 0.9, 60.0, 12)
    with pytest.raises(ValueError, match="another window or profile"):
        replicas_per_window(work, make_profile(step_seconds=0.02), 0.9, 300.0, 12)
