"""Run every policy for every model version of a stage on one trace."""

from __future__ import annotations

import functools
import gc
import heapq
import math
import multiprocessing
import threading
import time
from collections.abc import Callable
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass, replace
from queue import Empty
from typing import Any, Protocol

import numpy as np

from config.serving import ModelConfig, ModelVersion
from config.stage import StageConfig
from planner.lean import Reduction, bin_seconds, lean_result, stripped
from planner.policies import (
    CONFIGURED,
    CONFIGURED_ON_DEMAND,
    ORACLE,
    STATIC_PEAK,
    PolicyRun,
    WindowWork,
    base_setup,
    common_start_replicas,
    hpa_variants,
    oracle_setup,
    profile_for,
    service_seconds,
    static_setup,
    window_work,
)
from planner.profiles import ReplicaProfile
from planner.report import PolicySummary, fill_gap_closed, summarise
from planner.routing_report import RoutingComparison, compare_routing, warmup_distinct
from planner.settings import PlannerSettings
from planner.sim import GroupSpec, SimResult, SimSetup, Simulation
from planner.trace import Trace, return_freed_memory, thin, thinned, with_warmup

Progress = Callable[[int], object]
Simulated = tuple[SimResult, SimResult | None]

# How soon a pooled simulation should run (lower first; see Dispatcher): the oracle search's probes
# wait on each other one by one, so they go before anything else, then static peak (the chain's last
# link); the configured run (the search's target) and the search's first probe next; the runs nothing
# waits on last, longest first (so that no long one is left to run alone at the end).
CHAIN, CHAIN_END, GATE, LEAF = 0, 1, 2, 3


# Measured traces the pool's workers inherit when they are forked (plan_stage registers them first): a
# Replay of one of them is shipped by key, not pickled (a 27M-request trace is ~0.65 GB a pickle).
_SHARED_TRACES: dict[int, Trace] = {}


@dataclass(frozen=True)
class Replay:
    """What one simulation replays: the measured trace with its first ``warmup_seconds`` prepended
    where the simulation runs (planner.trace.with_warmup is deterministic, so the longer extended trace
    is never shipped), and for a lean plan what its per-request columns are reduced to there
    (planner/lean.py)."""

    trace: Trace | None  # the measured window; None while shipped by key (shared_key)
    warmup_seconds: float
    reduction: Reduction | None = None
    # The routing comparison's runs: the warm-up copies get block ids of their own (warmup_distinct).
    distinct_warmup_blocks: bool = False
    shared_key: int | None = None

    def measured(self) -> Trace:
        if self.trace is not None:
            return self.trace
        assert self.shared_key is not None
        return _SHARED_TRACES[self.shared_key]

    @property
    def size(self) -> int:
        return self.measured().size

    def extended(self) -> tuple[Trace, int]:
        """The trace to simulate (warm-up head first) and how many warm-up requests lead it."""
        extended, warmup_requests = with_warmup(self.measured(), self.warmup_seconds)
        if self.distinct_warmup_blocks:
            extended = warmup_distinct(extended, warmup_requests)
        return extended, warmup_requests

    def shipped(self) -> Replay:
        """The replay as sent to a worker: a trace the workers inherited at fork goes by its key."""
        if self.trace is not None and id(self.trace) in _SHARED_TRACES:
            return replace(self, trace=None, shared_key=id(self.trace))
        return self


class Runner(Protocol):
    """Starts one simulation (setup, what it replays, and node groups to price it on as well) and
    returns its future results: at once in this process, or queued on a process pool so that every
    simulation of every plan shares it (``priority``: CHAIN, CHAIN_END, GATE or LEAF)."""

    def __call__(
        self,
        setup: SimSetup,
        replay: Replay,
        reprice_as: tuple[GroupSpec, ...] | None,
        priority: int = LEAF,
    ) -> Future[Simulated]: ...


def serial_runner(progress: Progress | None) -> Runner:
    """Run each simulation when it is asked for, in this process."""

    def run(
        setup: SimSetup,
        replay: Replay,
        reprice_as: tuple[GroupSpec, ...] | None,
        priority: int = LEAF,
    ) -> Future[Simulated]:
        future: Future[Simulated] = Future()
        future.set_result(simulate_replay(setup, replay, progress, reprice_as))
        return future

    return run


@dataclass
class VersionPlan:
    model: ModelConfig
    version: ModelVersion
    trace: Trace
    profile: ReplicaProfile
    summaries: list[PolicySummary]
    results: dict[str, SimResult]
    oracle_utilisation: float
    static_replicas: int
    cold_start_seconds: float
    notes: list[str]
    # Off-hours switch points of the configured policy, from the measured window's start (for plots).
    offhours: tuple[tuple[float, bool], ...] = ((0.0, False),)
    # Set on the extra comparison run at a load the stage can carry: the trace's rate factor.
    load_factor: float | None = None
    capacity_short: bool = False
    # --routing-policies: the configured policy under each replica-selection policy (planner.routing).
    routing: RoutingComparison | None = None

    @property
    def title(self) -> str:
        name = f"{self.model.id}/{self.version.name}"
        if self.load_factor is None:
            return name
        return (
            f"{name} on {self.load_factor:g} of the trace's requests (SYNTHETIC: thinned to fit max_replicas)"
        )


def simulate(
    setup: SimSetup, trace: Trace, progress: Progress | None = None, warmup_requests: int = 0
) -> SimResult:
    """Run one setup; with a warm-up, return only the measured requests and times (from the end of it)."""
    return simulate_repriced(setup, trace, progress, warmup_requests, None)[0]


def simulate_repriced(
    setup: SimSetup,
    trace: Trace,
    progress: Progress | None,
    warmup_requests: int,
    reprice_as: tuple[GroupSpec, ...] | None,
) -> Simulated:
    """Run one setup; also its result on the node groups ``reprice_as`` (the all-on-demand variant)
    when the run did not depend on being Spot (Simulation.repriced), else None for that one."""
    return _run(_simulation(setup, trace), setup, progress, warmup_requests, reprice_as)


def simulate_replay(
    setup: SimSetup, replay: Replay, progress: Progress | None, reprice_as: tuple[GroupSpec, ...] | None
) -> Simulated:
    """What a pooled simulation runs: the replay's extended trace built here, and with a reduction the
    results made lean here, so neither the extended trace nor per-request results cross processes."""
    extended, warmup_requests = replay.extended()
    # A lean run keeps no finish times (the reduction reads none).
    simulation = _simulation(setup, extended, keep_finished=replay.reduction is None)
    del extended  # the simulation reads its columns in place; they go with it
    found = _run(simulation, setup, progress, warmup_requests, reprice_as)
    # Free the extended trace and the replica's columns before the reduction allocates.
    del simulation
    gc.collect()
    if replay.reduction is None:
        return found
    measured_trace, reduction = replay.measured(), replay.reduction
    configured, other = found
    lean = lean_result(configured, measured_trace, reduction)
    # The repriced result shares the run's per-request columns (Simulation.repriced), so its figures too.
    assert lean.figures is not None
    lean_other = None if other is None else stripped(other, lean.figures)
    del configured, other, found
    return_freed_memory()  # the run's and the reduction's heap, before the worker's next run
    return lean, lean_other


def _simulation(setup: SimSetup, trace: Trace, keep_finished: bool = True) -> Simulation:
    # Block ids only reach a simulation that routes with a RoutingSpec (the default path ignores them).
    hashes = trace.block_hashes if setup.routing is not None else None
    return Simulation(setup, trace.arrival, trace.prompt_tokens, trace.output_tokens, hashes, keep_finished)


def _run(
    simulation: Simulation,
    setup: SimSetup,
    progress: Progress | None,
    warmup_requests: int,
    reprice_as: tuple[GroupSpec, ...] | None,
) -> Simulated:
    holder = _ProgressAdapter(progress) if progress else None
    result = simulation.run(holder)
    other = None if reprice_as is None else simulation.repriced(reprice_as)
    first = _measured_only(result, setup, warmup_requests)
    # The repriced result shares the run's per-request columns, already moved to the measured clock.
    return first, None if other is None else _measured_only(other, setup, warmup_requests, first)


def _measured_only(
    result: SimResult, setup: SimSetup, warmup_requests: int, shifted: SimResult | None = None
) -> SimResult:
    result.warmup_settled_seconds = settled_before(result, setup.measure_from_seconds)
    return measured(result, warmup_requests, setup.measure_from_seconds, shifted)


def settled_before(result: SimResult, measure_from: float) -> float | None:
    """Seconds between the warm-up's last change of the desired replica count and its end."""
    inside = result.series_time < measure_from
    desired = result.series_desired[inside]
    changes = np.flatnonzero(np.diff(desired) != 0)
    if measure_from <= 0 or changes.size == 0:
        return None
    return float(measure_from - result.series_time[inside][changes[-1] + 1])


def measured(
    result: SimResult, warmup_requests: int, warmup_seconds: float, shifted: SimResult | None = None
) -> SimResult:
    """The run's result on the measured window's clock, without the warm-up's requests and series.

    The per-request time columns are shifted in place (they are the finished run's own buffers, read by
    nothing else; a copy of the three would be 24 bytes a request more at the run's peak), or taken from
    ``shifted``, an earlier call's result on the same run (Simulation.repriced shares its columns).
    """
    if warmup_requests == 0 and warmup_seconds == 0:
        return result
    keep = result.series_time >= warmup_seconds
    if shifted is None:
        columns = (result.first_token, result.admitted, result.finished)
        times = [column[warmup_requests:] for column in columns]
        for column in times:
            column -= warmup_seconds
    else:
        times = [shifted.first_token, shifted.admitted, shifted.finished]
    return replace(
        result,
        first_token=times[0],
        admitted=times[1],
        finished=times[2],
        outcome=result.outcome[warmup_requests:],
        series_time=result.series_time[keep] - warmup_seconds,
        series_desired=result.series_desired[keep],
        series_ready=result.series_ready[keep],
        cached_tokens=None if result.cached_tokens is None else result.cached_tokens[warmup_requests:],
    )


class _ProgressAdapter:
    def __init__(self, callback: Progress) -> None:
        self.update = callback


def plan_version(
    stage: StageConfig,
    model: ModelConfig,
    version: ModelVersion,
    trace: Trace,
    settings: PlannerSettings,
    seed: int,
    progress: Progress | None = None,
    cluster_scale_ups: tuple[float, ...] = (),
    runner: Runner | None = None,
    lean: bool = False,
    prepared: PreparedRun | None = None,
) -> VersionPlan:
    """Every policy on one version's share of the trace.

    Simulations go through ``runner`` (default: one after another in this process). The HPA variants
    and the oracle search's first sizing do not depend on each other, so all are started before any
    result is awaited; with a pool they run side by side. The search then waits on the configured run
    alone, and the other variants are awaited only once static peak is known, so the search's one-by-one
    chain is never held up by them. The results do not depend on the runner.
    ``cluster_scale_ups``: the other versions' Cluster Autoscaler scale-ups (see cluster_scale_ups).
    ``lean``: every run's per-request columns are reduced where it runs (planner/lean.py; the figures
    are the same). ``prepared``: what prepare_run gives for the version's share of ``trace``, when
    already done.
    """
    runner = runner or serial_runner(progress)
    if prepared is None:
        prepared = prepare_run(stage, model, version, trace, settings, seed)
    version_trace, base, start_replicas = prepared.version_trace, prepared.base, prepared.start_replicas
    base = replace(base, cluster_scale_ups=cluster_scale_ups)
    slo = model.slo.ttft_p95_seconds
    replay = replay_of(version_trace, settings, model if lean else None)
    runs: list[PolicyRun] = hpa_variants(stage, version, base, settings)
    results: dict[str, SimResult] = {}
    summaries: list[PolicySummary] = []
    # The all-on-demand variant comes from the configured run, priced on-demand, when that run never
    # depended on Spot (no interruption or capacity draw in the horizon); else it is simulated.
    on_demand = {run.name: run.setup.groups for run in runs}.get(CONFIGURED_ON_DEMAND)
    oracle = _OracleSearch(
        base, version_trace, replay, prepared.sizing, settings, model.autoscaling.max_replicas, slo, runner
    )
    started = {
        CONFIGURED: runner(base, replay, on_demand, priority=GATE),
    }
    oracle.start_first()
    started |= {
        run.name: runner(run.setup, replay, None)
        for run in runs
        if run.name not in (CONFIGURED, CONFIGURED_ON_DEMAND)
    }
    # The search waits only on the configured run (its target); the other variants are collected after
    # it, so that their runs (and a simulated all-on-demand one) fill the pool around the search's chain.
    configured, derived = started[CONFIGURED].result()
    if on_demand is not None and derived is None:
        started[CONFIGURED_ON_DEMAND] = runner(on_demand_setup(runs), replay, None)
    configured_summary = summarise(CONFIGURED, configured, version_trace, slo, settings.slo_quantile)
    search = oracle.run(min(settings.slo_quantile, configured_summary.slo_attainment))
    static = static_setup(
        base, prepared.sizing, search.slo_utilisation, settings, model.autoscaling.max_replicas
    )
    static_result = runner(static, replay, None, priority=CHAIN_END).result()[0]
    for run in runs:
        if run.name == CONFIGURED:
            results[run.name], summary = configured, configured_summary
        else:
            found = derived if run.name == CONFIGURED_ON_DEMAND and derived is not None else None
            results[run.name] = found if found is not None else started[run.name].result()[0]
            summary = summarise(run.name, results[run.name], version_trace, slo, settings.slo_quantile)
        summaries.append(summary)
    results[STATIC_PEAK] = static_result
    summaries.append(summarise(STATIC_PEAK, static_result, version_trace, slo, settings.slo_quantile))
    results[ORACLE] = search.result
    summaries.append(search.summary)
    fill_gap_closed(summaries, STATIC_PEAK, ORACLE)
    notes = [warmup_note(results, runs, base, start_replicas, settings)]
    notes += capacity_notes(
        version_trace, base.profile, settings, model.autoscaling.max_replicas, model.id, prepared.capacity
    )
    notes += vacuous_notes(summaries)
    notes += preemption_notes(results)
    if not search.slo_reachable:
        notes.append(
            f"{model.id}: even the oracle at {search.slo_utilisation:.0%} utilisation (max_replicas "
            f"{model.autoscaling.max_replicas}) misses the TTFT SLO on this trace and profile; "
            "the oracle row matches the configured policy's attainment "
            f"({summaries[0].slo_attainment:.1%}) instead"
        )
    routing = None
    if settings.routing_policies:
        routed = replace(replay, distinct_warmup_blocks=True)

        def simulate_routed(setup: SimSetup, trace: Trace, warmup_requests: int) -> SimResult:
            # compare_routing hands over the extended trace with warm-up blocks of their own; the run
            # rebuilds exactly that from the measured trace (with_warmup, then warmup_distinct).
            return runner(setup, routed, None).result()[0]

        extended, warmup_requests = replay.extended()
        routing = compare_routing(
            policies=settings.routing_policies,
            setup=runs[0].setup,
            version=version,
            extended=extended,
            measured_trace=version_trace,
            warmup_requests=warmup_requests,
            slo_seconds=slo,
            slo_quantile=settings.slo_quantile,
            simulate=simulate_routed,
            cache_bound=settings.prefix_cache_bound,
        )
    return VersionPlan(
        model=model,
        version=version,
        trace=version_trace,
        profile=base.profile,
        summaries=summaries,
        results=results,
        oracle_utilisation=search.utilisation,
        static_replicas=static.autoscaling.static_replicas,
        cold_start_seconds=base.cold_start_seconds,
        notes=notes,
        offhours=measured_switches(base.offhours, base.measure_from_seconds),
        capacity_short=prepared.capacity.short,
        routing=routing,
    )


def on_demand_setup(runs: list[PolicyRun]) -> SimSetup:
    return next(run.setup for run in runs if run.name == CONFIGURED_ON_DEMAND)


def replay_of(version_trace: Trace, settings: PlannerSettings, lean_for: ModelConfig | None) -> Replay:
    """The version's runs replay its trace after the warm-up; lean ones reduce to the model's SLO and the
    plot's bins (cli.py plots each plan's trace with settings.plot_bin_seconds)."""
    reduction = None
    if lean_for is not None:
        width = bin_seconds(version_trace.duration_seconds, settings.plot_bin_seconds)
        reduction = Reduction(lean_for.slo.ttft_p95_seconds, width)
    return Replay(version_trace, settings.warmup_seconds, reduction)


def version_share(trace: Trace, version: ModelVersion, seed: int) -> Trace:
    """The version's share of the trace (its traffic weight, seeded)."""
    return thin(trace, version.weight / 100, seed + 7919)


def configured_run(
    stage: StageConfig,
    model: ModelConfig,
    version: ModelVersion,
    trace: Trace,
    settings: PlannerSettings,
    seed: int,
    version_trace: Trace | None = None,
) -> tuple[Trace, Trace, int, SimSetup, int]:
    """The version's share of the trace (``version_trace`` if drawn already), it with the warm-up head,
    that head's size, the configured policy's setup (measured after the warm-up, from the common start)
    and the common start count."""
    if version_trace is None:
        version_trace = version_share(trace, version, seed)
    extended, warmup_requests = with_warmup(version_trace, settings.warmup_seconds)
    configured = base_setup(stage, model, version, extended, settings, seed)
    start_replicas = common_start_replicas(
        version_trace, configured.profile, settings.warmup_seconds, settings.start_utilisation
    )
    base = replace(
        configured,
        measure_from_seconds=extended.duration_seconds - version_trace.duration_seconds,
        initial_replicas=start_replicas,
    )
    return version_trace, extended, warmup_requests, base, start_replicas


@dataclass(frozen=True)
class PreparedRun:
    """A version's share of a trace made ready to plan: configured_run's products, with the sizings'
    per-window work (policies.window_work) in place of the extended trace, which is not kept."""

    version_trace: Trace
    base: SimSetup
    start_replicas: int
    sizing: WindowWork
    capacity: Capacity


def prepare_run(
    stage: StageConfig,
    model: ModelConfig,
    version: ModelVersion,
    trace: Trace,
    settings: PlannerSettings,
    seed: int,
    version_trace: Trace | None = None,
) -> PreparedRun:
    """configured_run, and the extended trace reduced to the sizings' window work and dropped (a
    27M-request one is ~0.43 GB; plan_stage prepares its plans one after another, before the pool)."""
    version_trace, extended, _, base, start_replicas = configured_run(
        stage, model, version, trace, settings, seed, version_trace
    )
    sizing = window_work(extended, base.profile, settings.oracle_window_seconds)
    del extended
    found = capacity(version_trace, base.profile, settings, model.autoscaling.max_replicas)
    return PreparedRun(version_trace, base, start_replicas, sizing, found)


def cluster_scale_ups(
    stage: StageConfig,
    jobs: list[tuple[ModelConfig, ModelVersion]],
    trace: Trace,
    settings: PlannerSettings,
    seed: int,
    runner: Runner | None = None,
    lean: bool = False,
    prepared: dict[tuple[str, str], PreparedRun] | None = None,
) -> dict[tuple[str, str], tuple[float, ...]]:
    """For each version, when the Cluster Autoscaler scaled up for the stage's other versions.

    The autoscaler's lastScaleUpTime is one value for the cluster, so a scale-up for any model holds off
    every node group's scale-down for scale-down-delay-after-add. A first pass runs each version's
    configured policy (what the other models really run) and records its scale-ups; each version is
    then planned against the others' (a first-order coupling: this version's own scale-downs do not
    feed back into theirs). Every run shares the warm-up clock, so the times line up (a result's
    scale_up_times are not cut to the measured window). The runs go through ``runner`` (default: one
    after another in this process, no progress), all started before any is awaited.
    """
    started = start_cluster_scale_ups(stage, jobs, trace, settings, seed, runner, lean, prepared)
    return {key: others() for key, others in started.items()}


def start_cluster_scale_ups(
    stage: StageConfig,
    jobs: list[tuple[ModelConfig, ModelVersion]],
    trace: Trace,
    settings: PlannerSettings,
    seed: int,
    runner: Runner | None = None,
    lean: bool = False,
    prepared: dict[tuple[str, str], PreparedRun] | None = None,
) -> dict[tuple[str, str], Callable[[], tuple[float, ...]]]:
    """cluster_scale_ups with the first pass started and not awaited: for each version, a call that
    waits for the other versions' runs only (not its own), so its plan can start as soon as they end.
    ``lean`` as for plan_version; ``prepared``: prepare_run's for each version (else prepared here)."""
    if len(jobs) < 2:
        return {}
    runner = runner or serial_runner(None)
    started: dict[tuple[str, str], Future[Simulated]] = {}
    for model, version in jobs:
        key = (model.id, version.name)
        ready = (prepared or {}).get(key)
        if ready is None:
            ready = prepare_run(stage, model, version, trace, settings, seed)
        replay = replay_of(ready.version_trace, settings, model if lean else None)
        started[key] = runner(ready.base, replay, None, priority=GATE)

    def others_of(key: tuple[str, str]) -> Callable[[], tuple[float, ...]]:
        def others() -> tuple[float, ...]:
            return tuple(
                sorted(
                    time
                    for other, future in started.items()
                    if other != key
                    for time in future.result()[0].scale_up_times
                )
            )

        return others

    return {key: others_of(key) for key in started}


def warmup_note(
    results: dict[str, SimResult],
    runs: list[PolicyRun],
    base: SimSetup,
    start: int,
    settings: PlannerSettings,
) -> str:
    """How each HPA policy came out of the common warm-up: settled, or still moving when measured."""
    parts = []
    for run in runs:
        settled = results[run.name].warmup_settled_seconds
        if settled is None:
            parts.append(f"{run.name} unchanged")
        elif settled >= settings.settled_seconds:
            parts.append(f"{run.name} settled {settled / 60:.0f} min before")
        else:
            parts.append(f"{run.name} STILL MOVING ({settled / 60:.0f} min before)")
    return (
        f"Warm-up: {base.measure_from_seconds / 60:.0f} min of the trace's start replayed before the "
        f"measured window; every HPA policy started from {start} replica(s) (the warm-up's work at "
        f"{settings.start_utilisation:.0%} utilisation, within each policy's bounds). Last change of the "
        f"desired count: {'; '.join(parts)}."
    )


def measured_switches(
    switches: tuple[tuple[float, bool], ...], measure_from: float
) -> tuple[tuple[float, bool], ...]:
    """Switch points moved to the measured window's clock (the warm-up before it dropped)."""
    state = False
    later: list[tuple[float, bool]] = []
    for moment, off in switches:
        if moment <= measure_from:
            state = off
        else:
            later.append((moment - measure_from, off))
    return ((0.0, state), *later)


@dataclass(frozen=True)
class Capacity:
    """What the trace needs at its busiest window against what ``max_replicas`` can carry."""

    peak_replicas: int  # replicas needed in the busiest window at the oracle's highest utilisation
    peak_work_replicas: float  # the same before rounding up (the busiest window's work / window)
    max_replicas: int
    peak_rate: float  # requests/s offered in that window
    carried_rate: float  # requests/s max_replicas carry of this traffic mix at that utilisation
    utilisation: float
    fit_utilisation: float  # the utilisation the busiest window is fitted to by fitting_share

    @property
    def short(self) -> bool:
        return self.peak_replicas > self.max_replicas

    @property
    def fitting_share(self) -> float:
        """A ``--shape thin:K`` at which the busiest window fits max_replicas (2 significant digits)."""
        factor = self.max_replicas * self.fit_utilisation / (self.peak_work_replicas * self.utilisation)
        digits = 1 - math.floor(math.log10(factor))
        return float(math.floor(factor * 10**digits) / 10**digits)


def capacity(trace: Trace, profile: ReplicaProfile, settings: PlannerSettings, max_replicas: int) -> Capacity:
    utilisation = max(settings.oracle_utilisations)
    window = settings.oracle_window_seconds
    windows = max(1, math.ceil(trace.duration_seconds / window))
    index = np.minimum((trace.arrival // window).astype(np.int64), windows - 1)
    work = service_seconds(profile, trace.prompt_tokens, trace.output_tokens)
    per_window = np.bincount(index, weights=work, minlength=windows) / (window * utilisation)
    busiest = int(np.argmax(per_window))
    peak_rate = float(np.count_nonzero(index == busiest)) / window
    per_request = float(np.mean(work)) if work.size else 0.0
    carried = max_replicas * utilisation / per_request if per_request > 0 else math.inf
    peak = float(per_window[busiest])
    return Capacity(
        math.ceil(peak - 1e-9),
        peak,
        max_replicas,
        peak_rate,
        carried,
        utilisation,
        settings.fit_load_utilisation,
    )


def capacity_notes(
    trace: Trace,
    profile: ReplicaProfile,
    settings: PlannerSettings,
    max_replicas: int,
    model_id: str,
    found: Capacity | None = None,
) -> list[str]:
    """The shortfall note, from ``found`` when the capacity is known already (plan.prepare_run)."""
    if found is None:
        found = capacity(trace, profile, settings, max_replicas)
    if not found.short:
        return []
    return [
        f"CAPACITY SHORTFALL ({model_id}): the busiest minute offers {found.peak_rate:.1f} requests/s and "
        f"needs {found.peak_replicas} replicas at {max(settings.oracle_utilisations):.0%} utilisation; "
        f"max_replicas {max_replicas} carry about {found.carried_rate:.1f} requests/s of this traffic mix. "
        "Every policy is capped there, so the rows below measure the overload, not the policy. To compare "
        "policies at a load this stage can carry: "
        f"--shape thin:{found.fitting_share:g} (SYNTHETIC), "
        f"or raise max_replicas to at least {found.peak_replicas}."
    ]


def preemption_notes(results: dict[str, SimResult]) -> list[str]:
    """How often a full KV cache made a replica preempt (and later recompute) a running request."""
    counts = [f"{name} {result.preemptions:,}" for name, result in results.items() if result.preemptions]
    if not counts:
        return []
    return [
        "KV cache full: running requests preempted and recomputed (vLLM V1, newest first), warm-up "
        f"included: {'; '.join(counts)}."
    ]


def vacuous_notes(summaries: list[PolicySummary]) -> list[str]:
    """Name a comparison that cannot rank the policies: every one at the same SLO attainment."""
    attainments = [summary.slo_attainment for summary in summaries]
    if not attainments or max(attainments) - min(attainments) > 0.005:
        return []
    level = attainments[0]
    return [
        f"VACUOUS COMPARISON: every policy has {level:.1%} of requests under the SLO"
        + (" (no request meets it)" if level == 0 else "")
        + "; the table does not rank the policies on this trace."
    ]


@dataclass
class OracleSearch:
    result: SimResult
    summary: PolicySummary
    utilisation: float
    slo_utilisation: float  # the highest utilisation meeting the SLO (static peak is sized with it)
    slo_reachable: bool


class _OracleSearch:
    """Oracle sizings searched by bisection over the utilisations (attainment falls as they rise).

    The oracle kept is the cheapest one reaching the target attainment (the SLO's share, or the
    configured policy's attainment when that is lower, so that an SLO out of reach still leaves a
    like-for-like lower bound). Static peak is sized with the highest utilisation meeting the SLO.
    Sizings whose replica schedules come out equal (e.g. all capped at max_replicas) are simulated
    once: the simulation depends on the setup alone.
    """

    def __init__(
        self,
        base: SimSetup,
        trace: Trace,
        replay: Replay,
        sizing: WindowWork,
        settings: PlannerSettings,
        max_replicas: int,
        slo: float,
        runner: Runner,
    ) -> None:
        self.base, self.trace, self.sizing = base, trace, sizing
        self.replay, self.settings = replay, settings
        self.max_replicas, self.slo, self.runner = max_replicas, slo, runner
        self.levels = sorted(settings.oracle_utilisations, reverse=True)
        self.started: dict[int, Future[Simulated]] = {}
        self.by_schedule: dict[tuple[tuple[float, int], ...], Future[Simulated]] = {}
        self.tried: dict[int, tuple[SimResult, PolicySummary]] = {}

    def start(self, index: int, priority: int = CHAIN) -> Future[Simulated]:
        if index not in self.started:
            setup = oracle_setup(self.base, self.sizing, self.levels[index], self.settings, self.max_replicas)
            schedule = setup.autoscaling.oracle_schedule
            if schedule not in self.by_schedule:
                self.by_schedule[schedule] = self.runner(setup, self.replay, None, priority=priority)
            self.started[index] = self.by_schedule[schedule]
        return self.started[index]

    def start_first(self) -> None:
        """The SLO bisection's first probe depends on nothing else: start it early."""
        self.start((len(self.levels) - 1) // 2, GATE)

    def attempt(self, index: int) -> PolicySummary:
        if index not in self.tried:
            result = self.start(index).result()[0]
            summary = summarise(ORACLE, result, self.trace, self.slo, self.settings.slo_quantile)
            summary.notes.append(f"sized at {self.levels[index]:.0%} replica utilisation")
            self.tried[index] = (result, summary)
        return self.tried[index][1]

    def most_aggressive_reaching(self, threshold: float) -> int | None:
        low, high, found = 0, len(self.levels) - 1, None
        while low <= high:
            middle = (low + high) // 2
            if self.attempt(middle).slo_attainment >= threshold - 1e-9:
                found, high = middle, middle - 1
            else:
                low = middle + 1
        return found

    def run(self, target_attainment: float) -> OracleSearch:
        quantile = self.settings.slo_quantile
        slo_index = self.most_aggressive_reaching(quantile)
        target_index = (
            slo_index if target_attainment >= quantile else self.most_aggressive_reaching(target_attainment)
        )
        if target_index is None:
            target_index = max(self.tried, key=lambda index: self.tried[index][1].slo_attainment)
        result, summary = self.tried[target_index]
        levels = self.levels
        slo_utilisation = levels[slo_index if slo_index is not None else -1]
        return OracleSearch(result, summary, levels[target_index], slo_utilisation, slo_index is not None)


def runs_per_version(settings: PlannerSettings) -> int:
    """Simulations per plan at most: up to 4 HPA variants (configured, all on-demand, without off-hours,
    GPU utilisation: policies.hpa_variants), static peak, the oracle's two bisections over the utilisation
    levels and one run per routing policy (the progress bar's total; the bar ends at the true count)."""
    bisection = math.ceil(math.log2(len(settings.oracle_utilisations) + 1))
    return 4 + 1 + 2 * bisection + len(settings.routing_policies)


def expected_requests(
    stage: StageConfig,
    trace: Trace,
    settings: PlannerSettings,
    model_ids: list[str] | None,
    seed: int = 1,
    fit_load: bool = False,
) -> int:
    """Simulated requests the progress bar counts, at most: every run replays the warm-up head and the
    trace; weighted versions replay their share, and with ``fit_load`` a capacity-short version's
    re-plan its fitted share too (plan_stage's first pass is not counted)."""
    head = int(np.count_nonzero(trace.arrival < settings.warmup_seconds))
    share = sum(
        version.weight / 100 * (1.0 if factor is None else factor)
        for model in stage.models
        if not model_ids or model.id in model_ids
        for version in model.versions
        if version.weight > 0
        for factor in _job_factors(stage, model, version, trace, settings, seed, fit_load)
    )
    return int(share * runs_per_version(settings) * (trace.size + head))


def plan_stage(
    stage: StageConfig,
    trace: Trace,
    settings: PlannerSettings,
    seed: int,
    model_ids: list[str] | None = None,
    progress: Progress | None = None,
    fit_load: bool = True,
    workers: int = 1,
    lean: bool | None = None,
) -> list[VersionPlan]:
    """Every version's comparison; with ``fit_load``, a capacity-short version is compared again at
    the rate its max_replicas can carry (labelled SYNTHETIC), so the policies are ranked on something.

    With ``workers`` > 1 every simulation of every plan (versions, their fitted re-plans, policies,
    oracle sizings) is queued on one pool of processes, so the cores stay busy until the last one;
    each simulation is independent and seeded, so the result is the same as in one process. Progress
    comes back through a queue. The workers are forked after every plan's trace is drawn, so they
    inherit the traces and each simulation is shipped its setup alone.

    ``lean`` (default: on with a pool, off in one process): each run's per-request columns are reduced
    to the figures the report, plots and notes read where the run happens (planner/lean.py), so this
    process never holds per-request result sets; every figure is the same as with full results.
    planner/digest.py asks for full results (its golden digest hashes the per-request columns).
    """
    lean = workers > 1 if lean is None else lean
    versions = [
        (model, version)
        for model in stage.models
        if not model_ids or model.id in model_ids
        for version in model.versions
        if version.weight > 0
    ]
    # Each job (a version on the stage's trace, and with ``fit_load`` a capacity-short one again on the
    # share it can carry): its trace and the version's share of that, and its setup and sizing inputs,
    # all before any simulation (the extended traces they are read from, one at a time, are gone before
    # the pool's workers start holding their own).
    jobs: list[tuple[ModelConfig, ModelVersion, float | None]] = []
    drawn: dict[tuple[str, str, float | None], tuple[Trace, Trace]] = {}
    prepared: dict[tuple[str, str, float | None], PreparedRun] = {}

    def add_job(model: ModelConfig, version: ModelVersion, factor: float | None) -> Capacity:
        key = (model.id, version.name, factor)
        drawn[key] = _job_traces(trace, version, seed, factor)
        prepared[key] = prepare_run(stage, model, version, drawn[key][0], settings, seed, drawn[key][1])
        jobs.append((model, version, factor))
        return prepared[key].capacity

    for model, version in versions:
        found = add_job(model, version, None)
        if fit_load and found.short:
            add_job(model, version, found.fitting_share)
    first_pass_prepared = {
        (model.id, version.name): prepared[(model.id, version.name, None)] for model, version in versions
    }

    def plan_job(
        model: ModelConfig,
        version: ModelVersion,
        factor: float | None,
        runner: Runner,
        scale_ups: tuple[float, ...],
    ) -> VersionPlan:
        job_trace = drawn[(model.id, version.name, factor)][0]
        found = plan_version(
            stage,
            model,
            version,
            job_trace,
            settings,
            seed,
            cluster_scale_ups=scale_ups,
            runner=runner,
            lean=lean,
            prepared=prepared[(model.id, version.name, factor)],
        )
        # The other models keep their recorded traffic, so their scale-ups stay as they were.
        return found if factor is None else replace(found, load_factor=factor)

    if workers <= 1:
        others = cluster_scale_ups(
            stage, versions, trace, settings, seed, lean=lean, prepared=first_pass_prepared
        )
        return [
            plan_job(
                model, version, factor, serial_runner(progress), others.get((model.id, version.name), ())
            )
            for model, version, factor in jobs
        ]
    shared = [version_trace for _, version_trace in drawn.values()]
    _SHARED_TRACES.update({id(version_trace): version_trace for version_trace in shared})
    try:
        return _plan_pooled(
            stage,
            trace,
            settings,
            seed,
            versions,
            jobs,
            plan_job,
            progress,
            workers,
            lean,
            first_pass_prepared,
        )
    finally:
        for version_trace in shared:
            _SHARED_TRACES.pop(id(version_trace), None)


def _plan_pooled(
    stage: StageConfig,
    trace: Trace,
    settings: PlannerSettings,
    seed: int,
    versions: list[tuple[ModelConfig, ModelVersion]],
    jobs: list[tuple[ModelConfig, ModelVersion, float | None]],
    plan_job: Callable[[ModelConfig, ModelVersion, float | None, Runner, tuple[float, ...]], VersionPlan],
    progress: Progress | None,
    workers: int,
    lean: bool,
    first_pass_prepared: dict[tuple[str, str], PreparedRun],
) -> list[VersionPlan]:
    context = multiprocessing.get_context("fork")
    with (
        context.Manager() as manager,
        ProcessPoolExecutor(workers, mp_context=context) as pool,
    ):
        queue = manager.Queue()
        # Fork every worker now, before the planning threads below exist (the pool forks lazily, and
        # forking a process that runs threads can copy a lock held by one of them).
        list(pool.map(time.sleep, [0.05] * workers))
        dispatcher = Dispatcher(pool, workers)
        # The first pass (each version's configured policy, for the cluster-wide scale-ups) on the pool
        # too; like the serial path it does not count towards the progress bar. A version's plan waits
        # for the other versions' first-pass runs only.
        first_pass = start_cluster_scale_ups(
            stage,
            versions,
            trace,
            settings,
            seed,
            dispatcher.runner(None),
            lean,
            prepared=first_pass_prepared,
        )
        runner = dispatcher.runner(queue.put)

        def job(model: ModelConfig, version: ModelVersion, factor: float | None) -> VersionPlan:
            scale_ups = first_pass[(model.id, version.name)]() if first_pass else ()
            return plan_job(model, version, factor, runner, scale_ups)

        with ThreadPoolExecutor(len(jobs)) as threads:
            futures = [threads.submit(job, model, version, factor) for model, version, factor in jobs]
            pending = set(futures)
            while pending:
                _, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                _drain(queue, progress)
            _drain(queue, progress)
            return [future.result() for future in futures]


def _job_traces(trace: Trace, version: ModelVersion, seed: int, factor: float | None) -> tuple[Trace, Trace]:
    """The trace a job plans on (the stage's, or its fitted share, labelled) and the version's share."""
    job_trace = trace if factor is None else thinned(trace, factor, seed + 104729)
    return job_trace, version_share(job_trace, version, seed)


class Dispatcher:
    """Hands simulations to the pool one per free worker, most urgent first (CHAIN, CHAIN_END, GATE in
    submission order, then LEAF by falling request count), instead of the pool's first-come order.

    The oracle search and static peak are a chain of simulations each waiting on the one before; with
    first-come order each link queued behind every variant started before it, so at the end the chains
    ran alone with a core idle. A finished CHAIN or GATE run keeps its worker for HOLD_SECONDS, the time
    its plan takes to read it and start the next link, before a LEAF may take it. Which run goes where
    does not change any result: each simulation is independent and seeded.
    """

    HOLD_SECONDS = 2.0

    def __init__(self, pool: Executor, workers: int, work: Callable[..., Simulated] | None = None) -> None:
        self.pool, self.free = pool, workers
        self.work = work or simulate_replay  # what a worker runs (tests give a stand-in)
        self.waiting: list[tuple[int, int, int, Callable[[], Future[Simulated]], Future[Simulated]]] = []
        self.held = 0  # workers kept free for a chain's next link
        self.count = 0
        self.lock = threading.Lock()

    def runner(self, report: Progress | None) -> Runner:
        def run(
            setup: SimSetup,
            replay: Replay,
            reprice_as: tuple[GroupSpec, ...] | None,
            priority: int = LEAF,
        ) -> Future[Simulated]:
            def submit() -> Future[Simulated]:
                return self.pool.submit(self.work, setup, replay.shipped(), report, reprice_as)

            outer: Future[Simulated] = Future()
            with self.lock:
                self.count += 1
                longest = -replay.size if priority == LEAF else 0
                heapq.heappush(self.waiting, (priority, longest, self.count, submit, outer))
                self._pump()
            return outer

        return run

    def _pump(self) -> None:
        """Start waiting runs on free workers (the lock held); a held worker takes CHAIN or GATE only."""
        while self.waiting and self.free > 0:
            if self.waiting[0][0] == LEAF and self.free <= self.held:
                return
            priority, _, _, submit, outer = heapq.heappop(self.waiting)
            self.free -= 1
            if priority != LEAF and self.held:
                self.held -= 1
            submit().add_done_callback(functools.partial(self._finished, outer, priority))

    def _finished(self, outer: Future[Simulated], priority: int, inner: Future[Simulated]) -> None:
        # Called on the pool's own management thread, which must not submit work itself (it drains the
        # wake-up pipe that submit writes to): hand over to a thread of ours.
        threading.Thread(target=self._settle, args=(outer, priority, inner), daemon=True).start()

    def _settle(self, outer: Future[Simulated], priority: int, inner: Future[Simulated]) -> None:
        with self.lock:
            self.free += 1
            if priority in (CHAIN, GATE):  # a next link follows
                self.held += 1
                timer = threading.Timer(self.HOLD_SECONDS, self._release)
                timer.daemon = True
                timer.start()
            self._pump()
        error = inner.exception()
        if error is not None:
            outer.set_exception(error)
        else:
            outer.set_result(inner.result())

    def _release(self) -> None:
        with self.lock:
            if self.held:
                self.held -= 1
            self._pump()


def _drain(queue: Any, progress: Progress | None) -> None:
    while True:
        try:
            step = queue.get_nowait()
        except Empty:
            return
        if progress is not None:
            progress(step)


def _job_factors(
    stage: StageConfig,
    model: ModelConfig,
    version: ModelVersion,
    trace: Trace,
    settings: PlannerSettings,
    seed: int,
    fit_load: bool,
) -> list[float | None]:
    """The version's plan (None), and with ``fit_load`` the share of the trace a capacity-short version
    is compared again on, as plan_stage decides them (for the progress total, known before it runs):
    capacity is a property of the trace and profile."""
    if not fit_load:
        return [None]
    version_trace = version_share(trace, version, seed)
    found = capacity(version_trace, profile_for(stage, version), settings, model.autoscaling.max_replicas)
    return [None, found.fitting_share] if found.short else [None]
