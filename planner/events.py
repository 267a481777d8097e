"""Typed events and the state every part of the simulation shares.

Event kinds are ordered so that simultaneous events resolve deterministically (heap order: time,
kind, then insertion). A pod's batching events (PREFILL_DONE, RUN_END) are not pushed on the heap:
each pod holds its one pending batching event (SimState._schedule), and the loop takes whichever of
the pods' events and the heap's head comes first in that same order. The behaviour lives in
planner.replica (batching), planner.cluster (pods, nodes, Cluster Autoscaler, Spot) and
planner.controllers (metrics, HPA/KEDA, off-hours, oracle); planner.sim composes them and runs the loop.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from enum import IntEnum
from heapq import heappop, heappush

import numpy as np
from mypy_extensions import mypyc_attr

from planner.entities import Node, Outcome, Pod
from planner.hpa import HpaState
from planner.prefix_cache import PrefixCache
from planner.profiles import ReplicaProfile
from planner.routing import Router
from planner.simspec import SimSetup


class EventKind(IntEnum):
    NODE_READY = 0
    POD_READY = 1
    PREFILL_DONE = 2
    RUN_END = 3
    TERMINATE = 4
    SPOT_NOTICE = 5
    OFFHOURS = 6
    ORACLE = 7
    SCRAPE = 8
    HPA_SYNC = 9
    CA_SCAN = 10
    KILL = 11
    LAUNCH_FAILED = 12
    SPOT_REBALANCE = 13


Event = tuple[float, EventKind, int, object, int]  # time, kind, sequence, subject, version


@mypyc_attr(allow_interpreted_subclasses=True)
class SimState:
    """Shared state (set up by planner.sim.Simulation) and the calls the parts make on each other."""

    setup: SimSetup
    profile: ReplicaProfile
    # Per-request columns, indexed by the request's position in the trace. The trace's own three are read
    # in place (views on its numpy buffers, no copy); the results are the run's own arrays.
    arrival: memoryview[float]
    prompt: memoryview[int]
    output: memoryview[int]
    first_token: array[float]
    admitted: array[float]
    finished: array[float]
    # The same three columns as memoryviews, for the hot path: a memoryview stores a float in half the
    # time array's __setitem__ takes (no argument parsing); reads cost the same.
    first_token_view: memoryview[float]
    admitted_view: memoryview[float]
    finished_view: memoryview[float]
    # False for a lean run (planner/lean.py reads no finish times): ``finished`` stays empty, 8 bytes a
    # request less.
    keeps_finished: bool
    outcome: array[int]
    events: list[Event]
    sequence: int
    nodes: list[Node]
    pods: list[Pod]
    routable: list[Pod]
    pod_serial: int
    spec: int
    hpa_enabled: bool
    recorded_replicas: int | None
    recorded_nodes: dict[int, int]
    hpa_state: HpaState
    group_min: list[int]
    replica_min: int
    last_scale_up: float
    scale_up_times: list[float]
    scrapes: list[tuple[float, int, list[float], list[float], int]]
    series: list[tuple[float, int, int]]
    rng: np.random.Generator
    capacity_rng: np.random.Generator
    startup_rng: np.random.Generator
    backoff_until: dict[int, float]
    capacity_failures: int
    node_launches: int
    spot_interruptions: int
    # Anything that depends on a group being Spot (beyond its price) adds 1 here: Simulation.repriced
    # relies on it to give the all-on-demand variant without running it again.
    spot_draws: int
    event_count: int
    oracle: bool
    router: Router | None
    # The router's uniform draws when its policy is least_request (planner.replica inlines that choice).
    least_request_draw: Callable[[], float] | None
    prefix_cache: PrefixCache | None
    # Pods that hold (or held) a pending batching event, and the one whose event comes first among them
    # (next_pod, valid while next_known). A pod's new event makes its previous one stale: the heap kept
    # stale events and discarded them when popped; here they are overwritten, and stale_events counts
    # those the heap would have popped (at or before the horizon), so event_count stays the same.
    timed: list[Pod]
    next_pod: Pod | None
    next_known: bool
    stale_events: int
    horizon: float
    request_timeout: float  # setup.request_timeout_seconds, read on every admission

    def push(self, time: float, kind: EventKind, subject: object = None, version: int = 0) -> None:
        self.sequence += 1
        heappush(self.events, (time, kind, self.sequence, subject, version))

    def _schedule(self, pod: Pod, time: float, kind: int, version: int) -> None:
        """The pod's next batching event (PREFILL_DONE or RUN_END), ordered as push would order it."""
        self.sequence += 1
        sequence = self.sequence
        if pod.ev_kind >= 0:
            if pod.ev_time <= self.horizon:
                self.stale_events += 1
        elif not pod.timed:
            pod.timed = True
            self.timed.append(pod)
        previous_time = pod.ev_time
        previous_kind = pod.ev_kind
        pod.ev_time = time
        pod.ev_kind = kind
        pod.ev_seq = sequence
        pod.ev_version = version
        if not self.next_known:
            return
        best = self.next_pod
        if best is None:
            self.next_pod = pod
        elif best is pod:
            # Still first if it moved earlier (its sequence is newer, so only time or kind can say so).
            if previous_kind < 0 or not (
                time < previous_time or (time == previous_time and kind < previous_kind)
            ):
                self.next_known = False
        elif time < best.ev_time or (
            time == best.ev_time
            and (kind < best.ev_kind or (kind == best.ev_kind and sequence < best.ev_seq))
        ):
            self.next_pod = pod

    def _first_timed(self) -> Pod | None:
        """The pod whose pending batching event comes first (time, kind, sequence); drops idle pods."""
        best: Pod | None = None
        best_time = 0.0  # read only once best is set
        best_kind = 0
        best_seq = 0
        idle = False
        for pod in self.timed:
            kind = pod.ev_kind
            if kind < 0:
                idle = True
                continue
            time = pod.ev_time
            if (
                best is None
                or time < best_time
                or (time == best_time and (kind < best_kind or (kind == best_kind and pod.ev_seq < best_seq)))
            ):
                best = pod
                best_time = time
                best_kind = kind
                best_seq = pod.ev_seq
        if idle:
            kept: list[Pod] = []
            for pod in self.timed:
                if pod.ev_kind < 0:
                    pod.timed = False
                else:
                    kept.append(pod)
            self.timed = kept
        return best

    def pop_event(self) -> Event | None:
        """Take the next event (a pod's batching event or the heap's head), or None when there is none."""
        if not self.next_known:
            self.next_pod = self._first_timed()
            self.next_known = True
        pod = self.next_pod
        events = self.events
        if pod is not None and (not events or (pod.ev_time, pod.ev_kind, pod.ev_seq) < events[0][:3]):
            kind = pod.ev_kind
            pod.ev_kind = -1
            self.next_known = False
            return (pod.ev_time, EventKind(kind), pod.ev_seq, pod, pod.ev_version)
        if events:
            return heappop(events)
        return None

    # Implemented by the parts (planner.replica, planner.cluster, planner.controllers).

    def _iterate(self, pod: Pod, now: float) -> None:
        raise NotImplementedError

    def _drop_all(self, pod: Pod, reason: Outcome) -> None:
        raise NotImplementedError

    def _stop_busy(self, pod: Pod, now: float) -> None:
        raise NotImplementedError

    def _maybe_gone(self, pod: Pod, now: float) -> None:
        raise NotImplementedError

    def _reconcile(self, now: float) -> None:
        raise NotImplementedError

    def _launch(self, group_index: int, now: float, ready: bool = False) -> Node:
        raise NotImplementedError

    def _group_size(self, index: int) -> int:
        raise NotImplementedError

    def _delete(self, pod: Pod, now: float) -> None:
        raise NotImplementedError

    def _record_series(self, now: float) -> None:
        raise NotImplementedError

    def _force_group_down(self, index: int, now: float) -> None:
        raise NotImplementedError
