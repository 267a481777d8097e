"""The scale-up chain (planner/startup.py): hand calculations in deterministic mode, the spread's
quantiles, seeded determinism, and its parameters read from the chart and the ingress."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from config import StageConfig
from planner.hpa import HpaSpec
from planner.policies import base_setup, probe_periods
from planner.settings import PlannerSettings
from planner.sim import Autoscaling, GroupSpec, Simulation
from planner.startup import Spread, StartupChain, fixed
from tests.unit.planner.conftest import make_profile, make_setup, make_trace
from tests.unit.planner.test_planner_control_loops import _Recording
from tests.variants import routed_by_alb

REPO = Path(__file__).resolve().parents[3]

CHAIN = StartupChain(
    node_ready=fixed(240),
    device_plugin=fixed(20),
    image_pull=fixed(60),
    model_load=fixed(55),
    startup_probe_period_seconds=10,
    readiness_probe_period_seconds=5,
    alb_interval_seconds=15,
    alb_healthy_threshold=2,
)


def _load_step(chain: StartupChain, seed: int = 0, replicas_per_node: int = 1) -> _Recording:
    # The group's minimum holds exactly the two initial replicas, so every new pod needs a new node.
    group = GroupSpec("gpu", "g5.xlarge", False, 1, replicas_per_node, 2 // replicas_per_node, 10, 1.0, False)
    setup = make_setup(
        make_profile(),
        horizon=1200.0,
        groups=(group,),
        autoscaling=Autoscaling(kind="hpa", hpa=HpaSpec(2, 10), queue_target=5),
        initial_replicas=2,
        ca_new_pod_buffer_seconds=30.0,
        startup=chain,
        seed=seed,
    )
    count = 40 * 900
    arrival = np.linspace(0, 900, count, endpoint=False)
    sim = _Recording(setup, arrival, np.full(count, 2000), np.full(count, 200))
    sim.run()
    return sim


def test_load_step_waits_for_the_whole_chain_by_hand() -> None:
    # As in test_planner_control_loops: CA scales up at the 50 s scan. Then node Ready 240 s, GPUs
    # allocatable 20 s later (310), image 60 s (370), /health answers after 55 s, which the 10 s
    # startup probe (ticking from container start) sees at 60 s (430); the readiness probe's next tick
    # is half a period later on average (432.5); the ALB's first check half an interval after
    # registration and a second success one interval later: 7.5 + 15 (455).
    sim = _load_step(CHAIN)
    assert min(sim.ready_times) == 50 + 240 + 20 + 60 + 60 + 2.5 + 7.5 + 15


def test_a_pod_bound_during_the_pull_waits_for_that_pull_and_a_later_one_pulls_nothing() -> None:
    group = GroupSpec("gpu", "g5.xlarge", False, 1, 3, 0, 10, 1.0, False)
    setup = make_setup(make_profile(), replicas=0, groups=(group,), startup=CHAIN)
    trace = make_trace([0.0], [10], [2])
    sim = Simulation(setup, trace.arrival, trace.prompt_tokens, trace.output_tokens)
    node = sim._launch(0, 0.0, ready=False)
    node.ready = True  # GPUs allocatable at 0 for this check
    serving = 60 + 2.5 + 7.5 + 15  # load 55 -> probe tick 60, readiness, ALB
    pods = [sim._new_pod(0.0) for _ in range(3)]
    sim._bind(pods[0], node, 0.0)  # pulls: 60 s
    sim._bind(pods[1], node, 30.0)  # the pull is half done: waits for it, no second pull
    sim._bind(pods[2], node, 100.0)  # the image is there
    assert [pod.ready_at for pod in pods] == [60 + serving, 60 + serving, 100 + serving]


def test_spread_draws_have_the_cited_median_and_p90() -> None:
    spread = Spread(240.0, 360.0)
    rng = np.random.default_rng(3)
    draws = np.array([spread.draw(rng) for _ in range(40_000)])
    assert np.median(draws) == pytest.approx(240.0, rel=0.02)
    assert np.quantile(draws, 0.9) == pytest.approx(360.0, rel=0.03)
    assert fixed(60.0).draw(rng) == 60.0
    assert spread.draw(None) == 240.0


def test_probe_and_alb_phases_stay_within_one_period_of_their_checks() -> None:
    chain = replace(CHAIN, spread=True, model_load=fixed(55))
    rng = np.random.default_rng(5)
    serving = np.array([chain.serving_seconds(rng) for _ in range(5000)])
    # 60 s to the startup probe's tick; readiness in [0, 5); ALB first check in [0, 15) + 15.
    assert serving.min() >= 60 + 15
    assert serving.max() < 60 + 5 + 15 + 15
    assert serving.mean() == pytest.approx(60 + 2.5 + 7.5 + 15, abs=0.3)


def test_spread_runs_are_seeded_deterministic_and_seed_dependent() -> None:
    chain = replace(CHAIN, spread=True, node_ready=Spread(240, 360), image_pull=Spread(227, 302))
    first = _load_step(chain, seed=1).ready_times
    assert first == _load_step(chain, seed=1).ready_times
    assert first != _load_step(chain, seed=2).ready_times


class _Notices(Simulation):
    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.notice_times: list[float] = []

    def _spot_notice(self, now: float, node: object, version: int) -> None:
        self.notice_times.append(now)
        super()._spot_notice(now, node, version)


def test_turning_the_spread_on_leaves_the_spot_draws_alone() -> None:
    # The chain draws from its own stream: the same seed gives the same Spot notices with or without it.
    spot = GroupSpec("spot", "g5.xlarge", True, 1, 1, 0, 10, 0.4, False)
    base = make_setup(
        make_profile(), replicas=3, horizon=20_000.0, groups=(spot,), spot_rate_per_node_second=2e-4
    )
    trace = make_trace([0.0], [10], [2], duration=20_000.0)
    notices = []
    for chain in (replace(CHAIN, spread=False), replace(CHAIN, spread=True)):
        setup = replace(base, startup=chain, seed=4)
        sim = _Notices(setup, trace.arrival, trace.prompt_tokens, trace.output_tokens)
        sim.run()
        notices.append(sim.notice_times[:3])  # the three initial nodes' notices: drawn at time 0
    assert len(notices[0]) == 3
    assert notices[0] == notices[1]


def test_the_chain_takes_its_periods_from_the_chart_and_the_controller_defaults(
    stages: dict[str, StageConfig],
) -> None:
    from k8s_charts.model_endpoint import READINESS_PROBE_PERIOD_SECONDS, STARTUP_PROBE_PERIOD_SECONDS
    from tests.unit.planner.conftest import poisson_trace

    assert probe_periods() == (STARTUP_PROBE_PERIOD_SECONDS, READINESS_PROBE_PERIOD_SECONDS)
    # The ingress sets no health-check interval or threshold, so the controller's defaults (15 s, 2)
    # are what the ALB uses; the planner's settings must say the same.
    ingress = (REPO / "k8s_charts" / "model_ingress.py").read_text(encoding="utf-8")
    assert "healthcheck-interval-seconds" not in ingress
    assert "healthy-threshold-count" not in ingress
    settings = PlannerSettings()
    assert (settings.alb_healthcheck_interval_seconds, settings.alb_healthy_threshold) == (15.0, 2)
    # prod as it would be with the ALB routing to the model pods (host): the whole chain, ALB check
    # included. prod ships `model` routing, whose chain skips the ALB phase (the test below).
    stage = routed_by_alb("prod")
    assert stage.ingress.routing_mode == "host"
    model = stage.models[0]
    setup = base_setup(stage, model, model.versions[0], poisson_trace(1.0, 60.0, 1), settings, 1)
    chain = setup.startup
    assert chain.startup_probe_period_seconds == STARTUP_PROBE_PERIOD_SECONDS
    assert chain.node_ready.median == stage.cluster_autoscaler.node_provision_minutes * 60
    assert chain.image_pull.median == pytest.approx(12.6 * 18.0)
    assert chain.spread
    # The oracle's cold start: every median and mean phase added up.
    assert setup.cold_start_seconds == pytest.approx(
        chain.node_ready.median
        + 20.0
        + 12.6 * 18.0
        + chain.model_load.median
        + (10 - chain.model_load.median % 10) % 10
        + 2.5
        + 7.5
        + 15.0
    )


def test_a_missing_chart_constant_is_a_clear_error(tmp_path: Path) -> None:
    from planner.policies import module_constants

    chart = tmp_path / "chart.py"
    chart.write_text("STARTUP_PROBE_PERIOD_SECONDS = 10\n", encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"chart\.py: no top-level integer constant READINESS_PROBE_PERIOD_SECONDS"
    ):
        module_constants(chart, ("STARTUP_PROBE_PERIOD_SECONDS", "READINESS_PROBE_PERIOD_SECONDS"))


def test_with_model_routing_a_new_replica_waits_for_no_alb_health_check(
    stages: dict[str, StageConfig],
) -> None:
    # staging and prod route by the request's model field through the gateway: the ALB's target group
    # is the Envoy pods (k8s_charts/model_ingress.py), so a vLLM pod is routable once Kubernetes calls
    # it Ready. The same stages with the ALB routing to the pods (header, host) wait for its check.
    from tests.unit.planner.conftest import poisson_trace

    trace = poisson_trace(1.0, 60.0, 1)

    def chain(stage: StageConfig) -> StartupChain:
        model = stage.models[0]
        return base_setup(stage, model, model.versions[0], trace, PlannerSettings(), 1).startup

    for name in ("staging", "prod"):
        shipped, behind_alb = stages[name], routed_by_alb(name)
        assert shipped.ingress.routing_mode == "model", name
        assert chain(shipped).alb_interval_seconds == 0.0, name
        assert behind_alb.ingress.routing_mode in ("header", "host"), name
        assert chain(behind_alb).alb_interval_seconds == 15.0, name
