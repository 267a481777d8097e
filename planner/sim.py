"""Request-level discrete-event simulation of one model version's replicas, pods and nodes.

A short event loop hands typed events (planner.events.EventKind) to the parts: planner.replica
(continuous batching on the time model of planner.profiles), planner.cluster (pods, nodes, Cluster
Autoscaler, Spot) and planner.controllers (metrics, HPA/KEDA, off-hours, oracle). Arrivals come
from the trace in order, interleaved with the event heap.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from dataclasses import replace
from heapq import heappop
from typing import Any, Final, cast

import numpy as np
from mypy_extensions import mypyc_attr

from planner.controllers import Controllers
from planner.entities import REQUEST_MASK, Node, Outcome, Pod, PodState
from planner.events import Event, EventKind
from planner.hpa import HpaState
from planner.prefix_cache import PrefixCache
from planner.routing import LEAST_REQUEST, Router
from planner.simspec import Autoscaling, GroupSpec, SimResult, SimSetup

_PREFILL_DONE: Final = int(EventKind.PREFILL_DONE)

__all__ = [
    "Autoscaling",
    "EventKind",
    "GroupSpec",
    "Node",
    "Outcome",
    "Pod",
    "PodState",
    "SimResult",
    "SimSetup",
    "Simulation",
]


# Tests subclass it to record what happens (plain Python classes may subclass it when compiled).
@mypyc_attr(allow_interpreted_subclasses=True)
class Simulation(Controllers):
    """One run; call :meth:`run` once."""

    def __init__(
        self,
        setup: SimSetup,
        arrival: np.ndarray,
        prompt: np.ndarray,
        output: np.ndarray,
        block_hashes: np.ndarray | None = None,
        keep_finished: bool = True,
    ) -> None:
        self.setup = setup
        self.profile = setup.profile
        # Per-request columns as flat C buffers rather than lists of Python floats and ints (about 32 bytes
        # each), so that a 27M-request week fits in memory. The trace's arrivals and token counts are read
        # in place through memoryviews on its numpy buffers (a copy would be 24 bytes a request more, or 16
        # with 32-bit tokens); the results are the run's own arrays (8 bytes a value, 4 for the replica's
        # counts, 1 for the outcome), filled straight from numpy's buffers.
        n = int(arrival.size)
        if n > REQUEST_MASK:
            raise ValueError(f"a simulation takes at most {REQUEST_MASK:,} requests, not {n:,}")
        self.arrival = cast("memoryview[float]", _view(arrival, np.float64))
        self.prompt = _view(prompt, np.int64)
        self.output = _view(output, np.int64)
        self.first_token = _column("d", np.full(n, math.nan))
        self.admitted = _column("d", np.full(n, math.nan))
        self.keeps_finished = keep_finished
        self.finished = _column("d", np.full(n if keep_finished else 0, math.nan))
        self.first_token_view = cast("memoryview[float]", memoryview(self.first_token))
        self.admitted_view = cast("memoryview[float]", memoryview(self.admitted))
        self.finished_view = cast("memoryview[float]", memoryview(self.finished))
        self.outcome = _column("b", np.zeros(n, dtype=np.int8))  # Outcome.IN_FLIGHT is 0
        # The V1 replica's columns (planner.replica): decode steps left (-1 until first admitted; at most
        # an admitted request's output tokens, so 32 bits hold it), tokens to recompute after a
        # preemption (at most its output tokens too), and the admission sequence.
        self.steps_left = _column("i", np.full(n, -1, dtype=np.int32))
        self.recompute = _column("i", np.zeros(n, dtype=np.int32))
        # Unsigned 32 bits: admissions (re-admissions after a preemption included) past 2**32 - 1 raise
        # OverflowError rather than wrap.
        self.admit_seq = _column("I", np.zeros(n, dtype=np.uint32))
        self.admissions = 0
        self.preemptions = 0
        self.events: list[Event] = []
        self.sequence = 0
        self.timed: list[Pod] = []
        self.next_pod: Pod | None = None
        self.next_known = True
        self.stale_events = 0
        self.horizon = setup.horizon_seconds
        self.request_timeout = setup.request_timeout_seconds
        self.nodes: list[Node] = []
        self.pods: list[Pod] = []
        self.routable: list[Pod] = []
        self.pod_serial = 0
        self.spec = 0
        self.hpa_enabled = setup.autoscaling.kind == "hpa"
        # Off-hours: KEDA paused at the floor (no HPA) and the counts the scaler recorded.
        self.recorded_replicas: int | None = None
        self.recorded_nodes: dict[int, int] = {}
        self.hpa_state = HpaState()
        self.group_min = [group.min_size for group in setup.groups]
        self.replica_min = setup.autoscaling.hpa.min_replicas if setup.autoscaling.hpa else 0
        self.last_scale_up = -math.inf
        self.scale_up_times: list[float] = []
        self.scrapes: list[tuple[float, int, list[float], list[float], int]] = []
        self.series: list[tuple[float, int, int]] = []
        self.rng = np.random.default_rng(setup.seed)
        # A separate stream, so that turning capacity failures on leaves the interruption draws as they were.
        self.capacity_rng = np.random.default_rng([setup.seed, 1])
        # The scale-up chain's draws (planner/startup.py) have their own stream too.
        self.startup_rng = np.random.default_rng([setup.seed, 2])
        self.backoff_until = {}
        self.capacity_failures = 0
        self.node_launches = 0
        self.spot_interruptions = 0
        # Spot-only randomness that reached the run (a notice inside the horizon, a capacity draw).
        # While it is 0 the run is also the all-on-demand run's, priced differently (see repriced).
        self.spot_draws = 0
        self.event_count = 0
        self.oracle = setup.autoscaling.kind == "oracle"
        if self.oracle:
            self.group_min = [0] * len(setup.groups)  # the lower bound keeps no idle floor
        # Routing hook (planner.routing, planner.prefix_cache): without a RoutingSpec both stay None and
        # replica.py takes the ALB's least-outstanding path with no prefix cache, as before.
        self.router: Router | None = None
        self.least_request_draw: Callable[[], float] | None = None
        self.prefix_cache: PrefixCache | None = None
        if setup.routing is not None:
            hashes = None if block_hashes is None else list(block_hashes)
            self.router = Router(setup.routing, hashes, setup.seed)
            if setup.routing.policy == LEAST_REQUEST:
                self.least_request_draw = self.router.draw
            if setup.routing.prefix_cache and hashes is not None:
                self.prefix_cache = PrefixCache(
                    hashes,
                    setup.routing.trace_block_tokens,
                    setup.routing.kv_block_tokens,
                    setup.routing.cache_bound,
                )

    # The event loop.

    def run(self, progress: object = None) -> SimResult:
        setup = self.setup
        self._initial_state()
        for moment, is_off in setup.offhours[1:]:
            self.push(moment, EventKind.OFFHOURS, is_off)
        for moment, desired in setup.autoscaling.oracle_schedule:
            self.push(moment, EventKind.ORACLE, desired)
        self.push(0.0, EventKind.SCRAPE)
        if setup.autoscaling.kind == "hpa":
            self.push(setup.autoscaling.hpa_sync_seconds, EventKind.HPA_SYNC)
        self.push(setup.ca_scan_seconds, EventKind.CA_SCAN)
        arrivals = self.arrival
        n = len(arrivals)
        index = 0
        horizon = setup.horizon_seconds
        events = self.events
        by_kind = {
            EventKind.NODE_READY: self._node_ready,
            EventKind.POD_READY: self._pod_ready,
            EventKind.PREFILL_DONE: self._prefill_done,
            EventKind.RUN_END: self._run_end,
            EventKind.TERMINATE: self._terminate_node,
            EventKind.SPOT_NOTICE: self._spot_notice,
            EventKind.OFFHOURS: self._offhours,
            EventKind.ORACLE: self._oracle_change,
            EventKind.SCRAPE: self._scrape,
            EventKind.HPA_SYNC: self._hpa_sync,
            EventKind.CA_SCAN: self._ca_scan,
            EventKind.KILL: self._kill,
            EventKind.LAUNCH_FAILED: self._launch_failed,
            EventKind.SPOT_REBALANCE: self._spot_rebalance,
        }
        handlers = [by_kind[kind] for kind in sorted(by_kind)]  # indexed by the kind's value
        update = getattr(progress, "update", None)
        reported = 0
        handled = 0
        # Arrivals up to the next event in a tight loop: an arrival can schedule an earlier event
        # (a prefill), so the next event is looked up again after each one. The next event is the first
        # of the heap's head and the pods' pending batching events, in (time, kind, sequence) order.
        upcoming = iter(arrivals)  # no index to box per arrival
        next_arrival = next(upcoming) if n else math.inf
        while True:
            if not self.next_known:
                self.next_pod = self._first_timed()
                self.next_known = True
            pod = self.next_pod
            if events:
                head = events[0]
                next_event = head[0]
                if pod is not None:
                    pod_time = pod.ev_time
                    if pod_time < next_event or (
                        pod_time == next_event
                        and (pod.ev_kind < head[1] or (pod.ev_kind == head[1] and pod.ev_seq < head[2]))
                    ):
                        next_event = pod_time
                    else:
                        pod = None
            elif pod is not None:
                next_event = pod.ev_time
            else:
                next_event = math.inf
            if next_arrival <= next_event:
                if next_arrival > horizon:
                    break
                self._arrive(index, next_arrival)
                index += 1
                next_arrival = next(upcoming) if index < n else math.inf
                if update is not None and index - reported >= 5000:
                    update(index - reported)
                    reported = index
                continue
            if next_event > horizon:
                break
            handled += 1
            if pod is not None:
                kind = pod.ev_kind
                pod.ev_kind = -1
                self.next_known = False
                if kind == _PREFILL_DONE:
                    self._prefill_done(next_event, pod, pod.ev_version)
                else:
                    self._run_end(next_event, pod, pod.ev_version)
                continue
            time, kind, _, subject, version = heappop(events)
            handlers[kind](time, subject, version)
        handled += self.stale_events
        self.event_count = handled
        if update is not None:
            update(n - reported)
        return self._result()

    # Initial state: the stage at rest, with its floor of nodes and replicas ready.

    def _initial_state(self) -> None:
        setup = self.setup
        off = setup.offhours[0][1]
        autoscaling = setup.autoscaling
        if autoscaling.kind == "hpa":
            assert autoscaling.hpa is not None
            wanted = setup.initial_replicas if setup.initial_replicas is not None else self.replica_min
            self.spec = min(max(wanted, self.replica_min), autoscaling.hpa.max_replicas)
            if off and self.spec > setup.offhours_floor_replicas:
                # Started at night: the scaler recorded the day's count and paused KEDA at the floor.
                self.recorded_replicas = self.spec
                self.spec = setup.offhours_floor_replicas
                self.hpa_enabled = False
        if off:
            for index, group in enumerate(setup.groups):
                if group.in_offhours:
                    self.recorded_nodes[index] = group.min_size
                    self.group_min[index] = min(group.min_size, setup.offhours_floor_nodes)
        for index, _group in enumerate(setup.groups):
            for _ in range(self.group_min[index]):
                self._launch(index, 0.0, ready=True)
        if autoscaling.kind == "static":
            self.spec = autoscaling.static_replicas
        elif autoscaling.kind == "oracle":
            schedule = autoscaling.oracle_schedule
            self.spec = schedule[0][1] if schedule and schedule[0][0] <= 0 else 0
        for _ in range(self.spec):
            pod = self._new_pod()
            node = self._free_node(pod, ready_only=False) or self._launch_for_initial_pod()
            if node is None:
                break
            self._bind(pod, node, 0.0)
            pod.state = PodState.READY
            pod.ready_at = 0.0
            self.routable.append(pod)
        self._record_series(0.0)

    def repriced(self, groups: tuple[GroupSpec, ...]) -> SimResult | None:
        """The finished run's result on the same node groups with other prices and capacity types, or
        None when the run depended on being Spot (a notice or capacity draw reached it).

        Without such a draw nothing in the run read whether a group is Spot except its price, so an
        all-on-demand run would take every decision this one took, event by event.
        """
        if self.spot_draws or len(groups) != len(self.setup.groups):
            return None
        for ours, theirs in zip(self.setup.groups, groups, strict=True):
            if replace(ours, spot=theirs.spot, hourly_price=theirs.hourly_price) != theirs:
                return None
        return self._result_for(replace(self.setup, groups=groups))

    def _result(self) -> SimResult:
        return self._result_for(self.setup)

    def _result_for(self, setup: SimSetup) -> SimResult:
        horizon = setup.horizon_seconds
        node_seconds: dict[str, float] = {group.name: 0.0 for group in setup.groups}
        gpu_seconds = 0.0
        dollars = 0.0
        start = setup.measure_from_seconds
        edges = np.append(np.arange(start, horizon, 3600.0), horizon)
        on_demand: dict[str, np.ndarray] = {}
        for node in self.nodes:
            group = setup.groups[node.group]
            end = horizon if node.terminated_at is None else min(node.terminated_at, horizon)
            seconds = max(0.0, end - max(node.launched_at, start))
            node_seconds[group.name] += seconds
            gpu_seconds += seconds * group.gpus_per_node
            dollars += seconds / 3600 * group.hourly_price
            if not group.spot and seconds > 0:
                overlap = np.minimum(end, edges[1:]) - np.maximum(node.launched_at, edges[:-1])
                hours = on_demand.setdefault(group.instance_type, np.zeros(edges.size - 1))
                hours += np.maximum(overlap, 0.0) / 3600
        series = np.asarray(self.series, dtype=np.float64).reshape(-1, 3)
        return SimResult(
            # Views on the run's own columns, not copies (nothing writes to them once the run is over): a
            # 27M-request run would otherwise hold 0.7 GB twice at its end.
            first_token=np.frombuffer(self.first_token, dtype=np.float64),
            admitted=np.frombuffer(self.admitted, dtype=np.float64),
            finished=np.frombuffer(self.finished, dtype=np.float64),
            outcome=np.frombuffer(self.outcome, dtype=np.int8),
            series_time=series[:, 0],
            series_desired=series[:, 1],
            series_ready=series[:, 2],
            node_seconds=node_seconds,
            gpu_seconds=gpu_seconds,
            dollars=dollars,
            on_demand_instance_hours=on_demand,
            hour_lengths=np.diff(edges) / 3600,
            node_launches=self.node_launches,
            spot_interruptions=self.spot_interruptions,
            spot_capacity_failures=self.capacity_failures,
            events=self.event_count,
            scale_up_times=tuple(self.scale_up_times),
            preemptions=self.preemptions,
            cached_tokens=None
            if self.prefix_cache is None
            else np.asarray(self.prefix_cache.cached_tokens, dtype=np.int64),
        )


def _view(values: np.ndarray, fallback: type[np.generic]) -> memoryview:
    """A view on ``values``'s own buffer when it is contiguous and of a dtype the simulation reads (float64
    for times; int32 or int64 for token counts), else on a contiguous ``fallback`` copy. The simulation
    only reads it (planner.calibration's replay writes the arrivals of its own array)."""
    kinds = (np.float64,) if fallback is np.float64 else (np.int32, np.int64)
    if values.dtype.type not in kinds:
        values = values.astype(fallback)
    return np.ascontiguousarray(values).data


def _column(typecode: str, values: np.ndarray) -> array[Any]:
    """A C array holding a copy of ``values`` (already of the matching dtype, contiguous or not)."""
    column = array(typecode)
    column.frombytes(np.ascontiguousarray(values).data.cast("B"))  # as bytes: frombytes wants format B
    return column
