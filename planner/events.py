"""Typed events and the state every part of the simulation shares.

Event kinds are ordered so that simultaneous events resolve deterministically (heap order: time,
kind, then insertion). The behaviour lives in planner.replica (batching), planner.cluster (pods,
nodes, Cluster Autoscaler, Spot) and planner.controllers (metrics, HPA/KEDA, off-hours, oracle);
planner.sim composes them and runs the loop.
"""

from __future__ import annotations

from array import array
from enum import IntEnum
from heapq import heappush

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
    # Per-request columns, indexed by the request's position in the trace.
    arrival: array[float]
    prompt: array[int]
    output: array[int]
    first_token: array[float]
    admitted: array[float]
    finished: array[float]
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
    prefix_cache: PrefixCache | None

    def push(self, time: float, kind: EventKind, subject: object = None, version: int = 0) -> None:
        self.sequence += 1
        heappush(self.events, (time, kind, self.sequence, subject, version))

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
