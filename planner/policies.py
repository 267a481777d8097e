"""The policies compared on one trace, and how each becomes a simulation setup.

* configured: the stage's HPA on queue depth (and KV-cache use when configured), with its Spot mix
  and off-hours schedule; also as all on-demand and without off-hours;
* gpu-utilisation: the same HPA behaviour driven by average GPU utilisation;
* static-peak: a fixed replica count sized for the busiest window;
* oracle: knows the arrivals, sizes each window, starts capacity exactly one cold start early and
  releases it the moment it is idle. The lowest-cost such schedule that meets the SLO is kept.
"""

from __future__ import annotations

import ast
import functools
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from config.cluster import CapacityType
from config.serving import ModelConfig, ModelVersion, ScalingRules
from config.stage import StageConfig
from k8s_charts.shutdown import shutdown_timing
from planner.gpu_slices import configured_slice, slice_profile
from planner.hpa import HpaSpec, Policy, Rules
from planner.prices import hourly_price
from planner.profiles import ReplicaProfile, replica_profile
from planner.routing import LEAST_OUTSTANDING, STAGE_POLICY, RoutingSpec
from planner.schedule import offhours_windows
from planner.settings import PlannerSettings
from planner.sim import Autoscaling, GroupSpec, SimSetup
from planner.startup import Spread, StartupChain
from planner.trace import Trace

CONFIGURED = "configured"
CONFIGURED_ON_DEMAND = "configured, all on-demand"
CONFIGURED_NO_OFFHOURS = "configured, no off-hours"
GPU_UTILISATION = "HPA on GPU utilisation"
STATIC_PEAK = "static peak"
ORACLE = "oracle"


@dataclass(frozen=True)
class PolicyRun:
    name: str
    setup: SimSetup


def rules(config: ScalingRules) -> Rules:
    policies = tuple(Policy(p.type, p.value, p.period_seconds) for p in config.policies)
    return Rules(config.stabilization_window_seconds, config.select_policy, policies)


def hpa_spec(model: ModelConfig) -> HpaSpec:
    scaling = model.autoscaling
    return HpaSpec(
        scaling.min_replicas, scaling.max_replicas, rules(scaling.scale_up), rules(scaling.scale_down)
    )


REPO = Path(__file__).resolve().parent.parent
ADDON_SOURCE = REPO / "constructs_lib" / "addons" / "cluster_autoscaler.py"
ENDPOINT_CHART_SOURCE = REPO / "k8s_charts" / "model_endpoint.py"


@functools.cache
def module_constants(path: Path, names: tuple[str, ...]) -> dict[str, int]:
    """Integer constants assigned at the top of a module, read from its source.

    Read rather than imported: the add-on and chart modules load the CDK and cdk8s (and their Node.js
    runtime), which the planner does not otherwise need. tests/unit/planner checks the values stay
    equal to the imported constants.
    """
    values: dict[str, int] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target = node.targets[0]
        if isinstance(target, ast.Name) and target.id in names:
            values[target.id] = int(ast.literal_eval(node.value))
    missing = [name for name in names if name not in values]
    if missing:
        raise ValueError(f"{path}: no top-level integer constant {', '.join(missing)}")
    return values


def expander_priorities() -> tuple[int, int]:
    """(Spot, on-demand) priorities of the Cluster Autoscaler add-on's priority expander."""
    values = module_constants(ADDON_SOURCE, ("SPOT_PRIORITY", "ON_DEMAND_PRIORITY"))
    return values["SPOT_PRIORITY"], values["ON_DEMAND_PRIORITY"]


def probe_periods() -> tuple[int, int]:
    """(startup, readiness) probe periods of the model endpoint chart's vLLM container."""
    values = module_constants(
        ENDPOINT_CHART_SOURCE, ("STARTUP_PROBE_PERIOD_SECONDS", "READINESS_PROBE_PERIOD_SECONDS")
    )
    return values["STARTUP_PROBE_PERIOD_SECONDS"], values["READINESS_PROBE_PERIOD_SECONDS"]


def startup_chain(
    node_provision_seconds: float,
    weights_gib: float,
    settings: PlannerSettings,
    alb_targets_pods: bool = True,
) -> StartupChain:
    """The scale-up chain of one version: medians and spreads from settings, periods from the chart.

    ``alb_targets_pods``: the ALB's target groups are the vLLM pods (``host`` and ``header`` routing).
    With ``model`` routing the ALB targets the gateway's Envoy pods, which route to a vLLM pod once
    Kubernetes calls it Ready, so a new replica waits for no ALB health check (the gateway's endpoint
    update, seconds, is not modelled).
    """
    load = weights_gib / settings.weights_load_gib_per_second + settings.engine_warmup_seconds
    startup_period, readiness_period = probe_periods()
    return StartupChain(
        node_ready=Spread(node_provision_seconds, node_provision_seconds * settings.node_ready_p90_ratio),
        device_plugin=Spread(settings.device_plugin_seconds, settings.device_plugin_p90_seconds),
        image_pull=Spread(
            settings.vllm_image_gb * settings.image_pull_seconds_per_gb,
            settings.vllm_image_gb * settings.image_pull_p90_seconds_per_gb,
        ),
        model_load=Spread(load, load * settings.model_load_p90_ratio),
        startup_probe_period_seconds=startup_period,
        readiness_probe_period_seconds=readiness_period,
        alb_interval_seconds=settings.alb_healthcheck_interval_seconds if alb_targets_pods else 0.0,
        alb_healthy_threshold=settings.alb_healthy_threshold,
        spread=settings.startup_spread,
    )


def group_specs(
    stage: StageConfig, version: ModelVersion, all_on_demand: bool = False
) -> tuple[GroupSpec, ...]:
    """The version's node groups in the Cluster Autoscaler's priority-expander order.

    The priorities are the add-on's own (constructs_lib.addons.cluster_autoscaler: Spot groups above
    on-demand ones), by each group's configured capacity type, so the all-on-demand variant keeps the
    expander's order while paying on-demand prices.
    """
    offhours_groups = {group.name for group in stage.offhours_node_groups}
    specs = []
    priority: dict[str, int] = {}
    for name in version.node_groups:
        group = stage.cluster.gpu_node_group(name)
        assert group is not None  # the stage validator guarantees it
        spot = group.capacity_type.value == "spot" and not all_on_demand
        # GPU sharing hook (planner.gpu_slices): a shared group's node holds slices, not whole GPUs.
        slice_ = configured_slice(group, version)
        per_node = (
            group.gpus_per_node // version.gpus_per_replica
            if slice_ is None
            else group.gpus_per_node * slice_.per_gpu
        )
        specs.append(
            GroupSpec(
                name=group.name,
                instance_type=group.instance_types[0],
                spot=spot,
                gpus_per_node=group.gpus_per_node,
                replicas_per_node=per_node,
                min_size=group.min_size,
                max_size=group.max_size,
                hourly_price=hourly_price(group.instance_types[0], spot),
                in_offhours=group.name in offhours_groups,
            )
        )
        spot_priority, on_demand_priority = expander_priorities()
        priority[group.name] = (
            spot_priority if group.capacity_type is CapacityType.SPOT else on_demand_priority
        )
    return tuple(sorted(specs, key=lambda spec: -priority[spec.name]))


def profile_for(stage: StageConfig, version: ModelVersion) -> ReplicaProfile:
    """The profile on the version's preferred node group (its first-priority instance type); on a
    shared group, on the version's slice of a GPU (planner.gpu_slices)."""
    first = group_specs(stage, version)[0]
    group = stage.cluster.gpu_node_group(first.name)
    slice_ = None if group is None else configured_slice(group, version)
    if slice_ is not None:
        return slice_profile(version, first.instance_type, slice_)
    return replica_profile(version, first.instance_type)


def base_setup(
    stage: StageConfig,
    model: ModelConfig,
    version: ModelVersion,
    trace: Trace,
    settings: PlannerSettings,
    seed: int,
) -> SimSetup:
    """The configured policy; the other policies are variations of it."""
    scaling = model.autoscaling
    offhours_applies = model in stage.offhours_models
    windows = (
        offhours_windows(stage.offhours, trace.start, trace.duration_seconds)
        if offhours_applies
        else [(0.0, False)]
    )
    autoscaler = stage.cluster_autoscaler
    return SimSetup(
        profile=profile_for(stage, version),
        groups=group_specs(stage, version),
        autoscaling=Autoscaling(
            kind="hpa",
            hpa=hpa_spec(model),
            queue_target=scaling.target_queue_depth,
            kv_target=scaling.target_kv_cache_usage,
            polling_seconds=scaling.polling_interval_seconds,
            hpa_sync_seconds=settings.hpa_sync_seconds,
            tolerance=settings.hpa_tolerance,
        ),
        horizon_seconds=trace.duration_seconds,
        scrape_seconds=stage.observability.scrape_interval_seconds,
        metric_lag_seconds=settings.metric_lag_seconds,
        ca_scan_seconds=autoscaler.scan_interval_seconds,
        ca_unneeded_seconds=autoscaler.scale_down_unneeded_minutes * 60,
        ca_delay_after_add_seconds=autoscaler.scale_down_delay_after_add_minutes * 60,
        ca_new_pod_buffer_seconds=settings.ca_gpu_pod_buffer_seconds,
        startup=startup_chain(
            autoscaler.node_provision_minutes * 60,
            version.weights_gib or 0.0,
            settings,
            alb_targets_pods=stage.ingress.routing_mode != "model",
        ),
        spot_rate_per_node_second=settings.spot_interruptions_per_node_hour / 3600,
        spot_notice_seconds=settings.spot_notice_seconds,
        spot_capacity_failure_probability=settings.spot_capacity_failure_probability,
        spot_rebalance_lead_seconds=settings.spot_rebalance_lead_seconds,
        spot_rebalance_action=stage.spot.rebalance_action.value,
        spot_failure_detect_seconds=settings.spot_failure_detect_seconds,
        ca_backoff_seconds=settings.ca_backoff_seconds,
        request_timeout_seconds=settings.request_timeout_seconds,
        termination_grace_seconds=shutdown_timing(version.max_request_seconds).pre_stop_deadline,
        offhours=tuple(windows),
        offhours_floor_replicas=stage.offhours.floor_replicas,
        offhours_floor_nodes=stage.offhours.floor_nodes,
        seed=seed,
        routing=stage_routing(stage),
    )


def stage_routing(stage: StageConfig) -> RoutingSpec | None:
    """How the stage picks a replica: None is the simulator's default path, the ALB's least outstanding
    requests (host and header routing); model routing's Envoy gateway picks by least request."""
    policy = STAGE_POLICY[stage.ingress.routing_mode]
    return None if policy == LEAST_OUTSTANDING else RoutingSpec(policy=policy)


def hpa_variants(
    stage: StageConfig, version: ModelVersion, base: SimSetup, settings: PlannerSettings
) -> list[PolicyRun]:
    runs = [PolicyRun(CONFIGURED, base)]
    if any(group.spot for group in base.groups):
        runs.append(PolicyRun(CONFIGURED_ON_DEMAND, replace(base, groups=group_specs(stage, version, True))))
    if any(off for _, off in base.offhours):
        runs.append(PolicyRun(CONFIGURED_NO_OFFHOURS, replace(base, offhours=((0.0, False),))))
    gpu = replace(
        base.autoscaling, queue_target=None, kv_target=None, gpu_target=settings.gpu_utilisation_target
    )
    runs.append(PolicyRun(GPU_UTILISATION, replace(base, autoscaling=gpu)))
    return runs


def service_seconds(profile: ReplicaProfile, prompt: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Replica-seconds each request costs at a full operating batch (the profile's time model)."""
    return profile.full_batch_seconds(prompt, output)


def common_start_replicas(trace: Trace, profile: ReplicaProfile, seconds: float, utilisation: float) -> int:
    """Replicas that carry the first ``seconds`` of the trace at ``utilisation`` (at least 1)."""
    head = trace.arrival < seconds
    work = float(service_seconds(profile, trace.prompt_tokens[head], trace.output_tokens[head]).sum())
    return max(1, math.ceil(work / (max(seconds, 1.0) * utilisation)))


@dataclass(frozen=True)
class WindowWork:
    """What the sizings read of a trace: the replica-seconds of work arriving in each window of
    ``window`` seconds (the profile's time model) and whether any request arrives in it. Computed once,
    it stands in for the trace, so a plan need not keep or rebuild a 27M-request one for its sizings."""

    work: np.ndarray
    busy: np.ndarray
    window: float
    profile: ReplicaProfile


def window_work(trace: Trace, profile: ReplicaProfile, window: float) -> WindowWork:
    windows = max(1, math.ceil(trace.duration_seconds / window))
    index = np.minimum((trace.arrival // window).astype(np.int64), windows - 1)
    work = np.bincount(
        index, weights=service_seconds(profile, trace.prompt_tokens, trace.output_tokens), minlength=windows
    )
    busy = np.bincount(index, minlength=windows) > 0
    return WindowWork(work, busy, window, profile)


def replicas_per_window(
    trace: Trace | WindowWork, profile: ReplicaProfile, utilisation: float, window: float, max_replicas: int
) -> np.ndarray:
    """Replicas needed per window so the offered work keeps each at ``utilisation`` (at least 1 if busy)."""
    found = trace if isinstance(trace, WindowWork) else window_work(trace, profile, window)
    if found.window != window or found.profile != profile:
        raise ValueError("the window work was computed for another window or profile")
    needed = np.ceil(found.work / (window * utilisation)).astype(np.int64)
    needed = np.where(found.busy, np.maximum(needed, 1), 0)
    return np.minimum(needed, max_replicas)


def oracle_schedule(needed: np.ndarray, window: float, cold_start: float) -> tuple[tuple[float, int], ...]:
    """Replica count over time: window w's count from cold_start before it starts until it ends."""
    starts = np.arange(needed.size) * window
    moments = sorted({0.0, *np.maximum(starts - cold_start, 0.0).tolist(), *(starts + window).tolist()})
    schedule: list[tuple[float, int]] = []
    for moment in moments:
        first = max(0, math.floor(moment / window))
        last = min(needed.size - 1, math.floor((moment + cold_start) / window))
        covering = [
            int(needed[w])
            for w in range(first, last + 1)
            if starts[w] - cold_start <= moment < starts[w] + window
        ]
        value = max(covering, default=0)
        if not schedule or schedule[-1][1] != value:
            schedule.append((moment, value))
    return tuple(schedule)


def oracle_setup(
    base: SimSetup,
    trace: Trace | WindowWork,
    utilisation: float,
    settings: PlannerSettings,
    max_replicas: int,
) -> SimSetup:
    window = settings.oracle_window_seconds
    needed = replicas_per_window(trace, base.profile, utilisation, window, max_replicas)
    schedule = oracle_schedule(needed, window, base.cold_start_seconds)
    return replace(
        base,
        autoscaling=Autoscaling(kind="oracle", oracle_schedule=schedule),
        offhours=((0.0, False),),
    )


def static_setup(
    base: SimSetup,
    trace: Trace | WindowWork,
    utilisation: float,
    settings: PlannerSettings,
    max_replicas: int,
) -> SimSetup:
    window = settings.oracle_window_seconds
    needed = replicas_per_window(trace, base.profile, utilisation, window, max_replicas)
    peak = max(1, int(needed.max()) if needed.size else 1)
    return replace(
        base, autoscaling=Autoscaling(kind="static", static_replicas=peak), offhours=((0.0, False),)
    )
