"""Scenario tests of the control loops against hand calculations.

Off-hours as lambdas/offhours_scaler does it (record, floor, KEDA paused, node groups forced down,
restore max(recorded, current)); the HPA's own sync period; a load step's time to the first new
ready replica through the whole chain.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from config import StageConfig
from planner.hpa import HpaSpec
from planner.sim import Autoscaling, GroupSpec, SimSetup, Simulation
from tests.unit.planner.conftest import make_profile, make_setup


def _hpa_setup(**overrides: object) -> SimSetup:
    group = GroupSpec("gpu", "g5.xlarge", False, 1, 1, 2, 10, 1.0, True)
    setup = make_setup(
        make_profile(),
        horizon=3000.0,
        groups=(group,),
        autoscaling=Autoscaling(kind="hpa", hpa=HpaSpec(2, 10), queue_target=5, polling_seconds=30),
        offhours_floor_replicas=1,
        offhours_floor_nodes=1,
        initial_replicas=4,
        ca_new_pod_buffer_seconds=30.0,
    )
    return replace(setup, **overrides)  # type: ignore[arg-type]


class _Recording(Simulation):
    """Records when each pod becomes ready (the simulator forgets pods once they are gone)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.ready_times: list[float] = []

    def _pod_ready(self, now: float, pod: object, version: int) -> None:
        before = len(self.routable)
        super()._pod_ready(now, pod, version)
        if len(self.routable) > before:
            self.ready_times.append(now)


def _run(setup: SimSetup, rate: float, seconds: float) -> _Recording:
    count = int(rate * seconds)
    arrival = np.linspace(0, seconds, count, endpoint=False)
    sim = _Recording(setup, arrival, np.full(count, 2000), np.full(count, 200))
    sim.run()
    return sim


def _desired_at(sim: Simulation, moment: float) -> int:
    return int(next(spec for time, spec, _ in reversed(sim.series) if time <= moment))


def test_off_hours_pauses_keda_at_the_floor_forces_nodes_down_and_restores_the_record() -> None:
    setup = _hpa_setup(offhours=((0.0, False), (600.0, True), (1800.0, False)))
    # Heavy load all along: a running HPA would scale up at night; a paused one must not.
    sim = _run(setup, rate=20.0, seconds=3000.0)
    before = _desired_at(sim, 599.0)
    assert before > 1
    night = [spec for time, spec, _ in sim.series if 600 <= time < 1800]
    assert set(night) == {1}, "KEDA paused at floor_replicas: no HPA scales at night"
    # Node group forced to floor_nodes = 1 (EKS drains the removed nodes, so they go within minutes).
    alive_at = [node for node in sim.nodes if node.launched_at <= 600 and (node.terminated_at or 1e9) > 1500]
    assert len(alive_at) == 1
    # Morning: node group back to its recorded size, then the Deployment to max(recorded, current).
    assert _desired_at(sim, 1800.0) >= before
    launched_at_restore = [node for node in sim.nodes if node.launched_at == 1800.0]
    assert len(launched_at_restore) >= before - 1


def test_at_or_below_the_floor_the_scaler_skips_and_the_hpa_keeps_running() -> None:
    # Starting at night with 2 replicas, at or below a floor of 5: no record, so KEDA is not paused.
    setup = _hpa_setup(
        offhours=((0.0, True),),
        offhours_floor_replicas=5,
        initial_replicas=2,
        autoscaling=Autoscaling(kind="hpa", hpa=HpaSpec(2, 10), queue_target=5),
    )
    sim = _run(setup, rate=20.0, seconds=3000.0)
    assert max(spec for time, spec, _ in sim.series if time > 0) > 5, "no record, no pause: the HPA scales"


def test_hpa_syncs_every_15_s_whatever_keda_polling_interval() -> None:
    # pollingInterval 300 s: the first scale-up still comes from an HPA sync within 15 s of the scrape
    # that shows the queue (scrape 15 s, lag 0), not at 300 s.
    setup = _hpa_setup(
        autoscaling=Autoscaling(kind="hpa", hpa=HpaSpec(2, 10), queue_target=5, polling_seconds=300),
        initial_replicas=2,
    )
    sim = _run(setup, rate=40.0, seconds=400.0)
    first_up = next(time for time, spec, _ in sim.series if spec > 2)
    assert first_up <= 45.0


def test_load_step_time_to_first_new_ready_replica_is_the_whole_chain() -> None:
    # Hand calculation from the setup: the queue builds at once; the scrape at 15 s shows it and the
    # HPA sync at 15 s (no metric lag) creates the pods; the Cluster Autoscaler (10 s scans) skips
    # while the oldest unschedulable GPU pod is under 30 s old (static_autoscaler.go, allPodsAreNew:
    # 15 + 30 = 45 > 40), so it scales up at the 50 s scan; the node boots 240 s, then the image pulls
    # 60 s and the model loads 60 s: ready at 410 s.
    setup = _hpa_setup(
        autoscaling=Autoscaling(kind="hpa", hpa=HpaSpec(2, 10), queue_target=5),
        groups=(GroupSpec("gpu", "g5.xlarge", False, 1, 1, 2, 10, 1.0, False),),
        initial_replicas=2,
    )
    sim = _run(setup, rate=40.0, seconds=900.0)
    assert sim.ready_times, "a new replica became ready"
    assert min(sim.ready_times) == 50 + 240 + 60 + 60


def test_node_group_order_is_the_cluster_autoscaler_addons_priority() -> None:
    from constructs_lib.addons.cluster_autoscaler import ON_DEMAND_PRIORITY, SPOT_PRIORITY
    from planner.policies import expander_priorities

    assert expander_priorities() == (SPOT_PRIORITY, ON_DEMAND_PRIORITY)
    assert SPOT_PRIORITY > ON_DEMAND_PRIORITY  # Spot groups first, as the planner's groups are ordered


def test_spot_without_capacity_falls_back_to_on_demand_after_detection_and_backoff() -> None:
    # Spot first (priority expander), every Spot launch fails: CA sees the failed placeholder 60 s
    # later, backs the Spot group off for 300 s and launches on the on-demand group at once.
    spot = GroupSpec("spot", "g5.xlarge", True, 1, 1, 0, 10, 0.4, False)
    on_demand = GroupSpec("od", "g5.xlarge", False, 1, 1, 2, 10, 1.0, False)
    setup = _hpa_setup(
        groups=(spot, on_demand),
        autoscaling=Autoscaling(kind="hpa", hpa=HpaSpec(2, 10), queue_target=5),
        initial_replicas=2,
        spot_capacity_failure_probability=1.0,
        spot_failure_detect_seconds=60.0,
        ca_backoff_seconds=300.0,
    )
    sim = _run(setup, rate=40.0, seconds=900.0)
    failed = [node for node in sim.nodes if node.failed]
    first_spot = min(node.launched_at for node in failed)
    assert first_spot == 50.0  # the same scale-up moment as the load-step test
    later_on_demand = [node.launched_at for node in sim.nodes if node.group == 1 and node.launched_at > 0]
    assert min(later_on_demand) == first_spot + 60.0
    # The failed launches cost nothing, and no Spot launch is tried again within the backoff.
    assert all(node.terminated_at == node.launched_at for node in failed)
    retries = sorted(node.launched_at for node in failed if node.launched_at > first_spot)
    assert not retries or retries[0] >= first_spot + 60.0 + 300.0
    assert sim.capacity_failures == len(failed)


class _NoticeAt100(_Recording):
    """A Spot interruption notice for the first node at 100 s, instead of a random one."""

    def _initial_state(self) -> None:
        super()._initial_state()
        from planner.events import EventKind

        self.push(100.0, EventKind.SPOT_NOTICE, self.nodes[0])


def test_spot_notice_drains_replaces_and_terminates_on_the_hand_calculated_clock() -> None:
    # Two static replicas on a Spot group of one GPU per node. Notice at 100 s: the node is cordoned
    # and its pod leaves the load balancer at once; the ReplicaSet creates a replacement, which waits
    # for the Cluster Autoscaler's 30 s new-GPU-pod buffer (scan at 130 s), a node (240 s), the image
    # (60 s) and the model (60 s): ready at 490 s. The reclaimed node goes at the end of the 120 s notice.
    spot = GroupSpec("spot", "g5.xlarge", True, 1, 1, 0, 10, 0.4, False)
    setup = make_setup(
        make_profile(), replicas=2, horizon=900.0, groups=(spot,), ca_new_pod_buffer_seconds=30.0
    )
    count = 900
    sim = _NoticeAt100(
        setup, np.linspace(0, 900, count, endpoint=False), np.full(count, 100), np.full(count, 5)
    )
    sim.run()
    reclaimed = sim.nodes[0]
    assert reclaimed.cordoned
    assert reclaimed.terminated_at == 100.0 + 120.0
    assert sim.ready_times == [130.0 + 240.0 + 60.0 + 60.0]
    assert sim.spot_interruptions == 1


def test_after_a_drop_empty_nodes_go_after_unneeded_time_and_not_within_delay_after_add() -> None:
    # Load for 300 s, then none: the HPA scales down after its 300 s stabilisation window; each node
    # emptied then is removed at the first 10 s CA scan at least scale_down_unneeded (600 s) after it
    # emptied and at least scale_down_delay_after_add (600 s) after the last scale-up.
    setup = _hpa_setup(
        autoscaling=Autoscaling(kind="hpa", hpa=HpaSpec(2, 10), queue_target=5),
        groups=(GroupSpec("gpu", "g5.xlarge", False, 1, 1, 2, 10, 1.0, False),),
        initial_replicas=2,
    )
    sim = _run(setup, rate=40.0, seconds=300.0)
    removed = [node for node in sim.nodes if node.terminated_at is not None]
    assert removed, "the scale-up's nodes were removed after the drop"
    for node in removed:
        assert node.empty_since is not None
        earliest = max(node.empty_since + 600.0, sim.last_scale_up + 600.0)
        first_scan = np.ceil(earliest / 10.0) * 10.0
        assert node.terminated_at == first_scan
    assert len([node for node in sim.nodes if node.terminated_at is None]) == 2  # back to the group minimum


def test_scale_down_waits_for_any_scale_up_in_the_cluster_not_only_its_own() -> None:
    # The drop scenario above, plus another model's scale-up at 1500 s: the Cluster Autoscaler's
    # lastScaleUpTime is cluster-wide (isScaleDownInCooldown, static_autoscaler.go 1.36.0), so no node of
    # this model goes before 1500 + 600 s, although its own last scale-up was long before.
    setup = _hpa_setup(
        autoscaling=Autoscaling(kind="hpa", hpa=HpaSpec(2, 10), queue_target=5),
        groups=(GroupSpec("gpu", "g5.xlarge", False, 1, 1, 2, 10, 1.0, False),),
        initial_replicas=2,
        cluster_scale_ups=(1500.0,),
    )
    sim = _run(setup, rate=40.0, seconds=300.0)
    removed = [node for node in sim.nodes if node.terminated_at is not None]
    assert removed
    assert sim.last_scale_up + 600 < 1500 + 600  # alone, its own cooldown would have let them go earlier
    for node in removed:
        assert node.empty_since is not None
        earliest = max(node.empty_since + 600.0, sim.last_scale_up + 600.0, 1500.0 + 600.0)
        assert node.terminated_at == np.ceil(earliest / 10.0) * 10.0
    assert min(node.empty_since + 600 for node in removed if node.empty_since is not None) < 1500 + 600


class _NoticeAt1000(_Recording):
    """One Spot notice for the first node at 1000 s, with the setup's rebalance lead before it."""

    def _initial_state(self) -> None:
        super()._initial_state()
        from planner.events import EventKind

        node = self.nodes[0]
        self.push(1000.0, EventKind.SPOT_NOTICE, node)
        lead = self.setup.spot_rebalance_lead_seconds
        if lead > 0 and self.setup.spot_rebalance_action != "ignore":
            self.push(1000.0 - lead, EventKind.SPOT_REBALANCE, node)


def _rebalance_run(action: str, lead: float) -> _NoticeAt1000:
    spot = GroupSpec("spot", "g5.xlarge", True, 1, 1, 0, 10, 0.4, False)
    setup = make_setup(
        make_profile(),
        replicas=2,
        horizon=2000.0,
        groups=(spot,),
        ca_new_pod_buffer_seconds=30.0,
        spot_rebalance_lead_seconds=lead,
        spot_rebalance_action=action,
    )
    count = 2000
    sim = _NoticeAt1000(
        setup, np.linspace(0, 2000, count, endpoint=False), np.full(count, 100), np.full(count, 5)
    )
    sim.run()
    return sim


def test_rebalance_recommendation_does_what_the_stage_action_says() -> None:
    # Recommendation at 1000 - 600 = 400 s. drain (prod): the pod leaves at once and its replacement
    # waits for the 30 s GPU-pod buffer (scan at 430), a node 240 s, image 60 s, model 60 s: 790 s, before
    # the notice. cordon (dev, staging): no new pods there, the pod serves on; the replacement starts at
    # the notice as without a recommendation (1030 + 360). ignore: the same as no recommendation.
    drained = _rebalance_run("drain", 600.0)
    assert drained.ready_times == [430.0 + 360.0]
    assert drained.nodes[0].cordoned
    for action, lead in (("cordon", 600.0), ("ignore", 600.0), ("drain", 0.0)):
        sim = _rebalance_run(action, lead)
        assert sim.ready_times == [1030.0 + 360.0], action
        assert sim.nodes[0].terminated_at == 1120.0


def test_each_version_is_planned_against_the_other_versions_scale_ups(stages: dict[str, StageConfig]) -> None:
    from planner.plan import cluster_scale_ups, configured_run
    from planner.settings import PlannerSettings
    from tests.unit.planner.conftest import poisson_trace

    stage = stages["prod"]
    jobs = [(model, version) for model in stage.models for version in model.versions if version.weight > 0]
    assert len(jobs) >= 2
    # A load step at 15 minutes, so the configured policies scale up.
    trace = poisson_trace(lambda t: np.where(t < 900, 1.0, 8.0), 1800.0, 3)
    settings = replace(PlannerSettings(), warmup_seconds=300.0)
    others = cluster_scale_ups(stage, jobs, trace, settings, 1)
    own = {}
    for model, version in jobs:
        _, extended, _, base, _ = configured_run(stage, model, version, trace, settings, 1)
        run = Simulation(base, extended.arrival, extended.prompt_tokens, extended.output_tokens).run()
        own[(model.id, version.name)] = run.scale_up_times
    assert all(own.values()), "every version scaled up: the check below is not vacuous"
    for key in own:
        expected = sorted(time for other, times in own.items() if other != key for time in times)
        assert list(others[key]) == expected
