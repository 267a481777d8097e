"""The simulator's hot-path shortcuts give exactly what the plain way gives.

Each pod holds its one pending PREFILL_DONE or RUN_END (SimState._schedule) instead of pushing it on
the event heap; a new one overwrites the pod's previous (stale) one, which the heap kept and discarded
when popped. A reference heap of every event, run through the same random operations, must give the
same events in the same order once the overwritten ones are left out, and their count must be what
stale_events says. The replica's inlined least_request choice must route as Router.choose does.
"""

from __future__ import annotations

import math
import random
from heapq import heappop, heappush

import numpy as np
import pytest

from planner.entities import Pod
from planner.events import EventKind, SimState
from planner.routing import LEAST_REQUEST, RoutingSpec
from planner.sim import SimResult, Simulation
from tests.unit.planner.conftest import make_profile, make_setup, poisson_trace

POD_KINDS = (EventKind.PREFILL_DONE, EventKind.RUN_END)
HEAP_KINDS = (EventKind.NODE_READY, EventKind.POD_READY, EventKind.TERMINATE, EventKind.SCRAPE)


def _state() -> SimState:
    state = SimState()
    state.events = []
    state.sequence = 0
    state.timed = []
    state.next_pod = None
    state.next_known = True
    state.stale_events = 0
    state.horizon = math.inf
    return state


@pytest.mark.parametrize("seed", range(20))
def test_pod_events_and_the_heap_pop_in_the_reference_heaps_order(seed: int) -> None:
    draw = random.Random(seed)
    state = _state()
    pods = [Pod(serial) for serial in range(draw.randint(1, 6))]
    reference: list[tuple[float, int, int, object, int]] = []
    latest: dict[int, int] = {}  # pod serial -> sequence of its newest scheduled event
    overwritten = 0
    compared = 0

    def reference_pop() -> tuple[float, int, int, object, int] | None:
        nonlocal overwritten
        while reference:
            event = heappop(reference)
            subject = event[3]
            if isinstance(subject, Pod) and event[1] in POD_KINDS and latest[subject.serial] != event[2]:
                overwritten += 1  # the heap would pop it and discard it as stale
                continue
            return event
        return None

    for _ in range(400):
        action = draw.random()
        time = float(draw.randint(0, 12))  # few distinct times: many ties on time, and on kind
        if action < 0.25:
            kind = draw.choice(HEAP_KINDS)
            state.push(time, kind, "controller")
            reference_event = (time, int(kind), state.sequence, "controller", 0)
            heappush(reference, reference_event)
        elif action < 0.6:
            pod = draw.choice(pods)
            pod.version += 1
            kind = draw.choice(POD_KINDS)
            state._schedule(pod, time, int(kind), pod.version)
            latest[pod.serial] = state.sequence
            heappush(reference, (time, int(kind), state.sequence, pod, pod.version))
        elif action < 0.7:
            draw.choice(pods).version += 1  # a pod gone or idle: its pending event turns stale in place
        else:
            ours = state.pop_event()
            theirs = reference_pop()
            assert (ours is None) == (theirs is None)
            if ours is not None and theirs is not None:
                assert (ours[0], int(ours[1]), ours[2], ours[3], ours[4]) == theirs
                compared += 1
    while (ours := state.pop_event()) is not None:
        theirs = reference_pop()
        assert theirs is not None
        assert (ours[0], int(ours[1]), ours[2], ours[3], ours[4]) == theirs
        compared += 1
    assert reference_pop() is None
    assert compared > 0
    assert state.stale_events == overwritten


def test_the_event_count_is_the_heaps() -> None:
    # 731: recorded with the event heap that held every batching event (before pods held their own); the
    # count includes the stale events the heap popped and discarded up to the horizon (38 of them here:
    # arrivals that cut decode runs).
    trace = poisson_trace(2.0, 400.0, seed=3)
    setup = make_setup(make_profile(), replicas=2, horizon=300.0)
    sim = Simulation(setup, trace.arrival, trace.prompt_tokens, trace.output_tokens)
    result = sim.run()
    assert sim.stale_events == 38
    assert result.events == 731


class _RouterPath(Simulation):
    """least_request through Router.choose (the router's own method), not the replica's inlined copy."""

    def run(self, progress: object = None) -> SimResult:
        self.least_request_draw = None
        return super().run(progress)


def test_the_inlined_least_request_choice_is_the_routers() -> None:
    trace = poisson_trace(6.0, 400.0, seed=5)
    setup = make_setup(make_profile(), replicas=4, horizon=300.0, routing=RoutingSpec(policy=LEAST_REQUEST))
    inlined = Simulation(setup, trace.arrival, trace.prompt_tokens, trace.output_tokens)
    assert inlined.least_request_draw is not None
    by_router = _RouterPath(setup, trace.arrival, trace.prompt_tokens, trace.output_tokens)
    first, second = inlined.run(), by_router.run()
    assert by_router.least_request_draw is None
    for column in ("first_token", "admitted", "finished", "outcome"):
        assert np.array_equal(getattr(first, column), getattr(second, column), equal_nan=column != "outcome")
    assert np.count_nonzero(first.outcome == 1) > 100
