"""The simulated things: requests' outcomes, pods (vLLM replicas) and nodes."""

from __future__ import annotations

import math
from collections import deque
from enum import IntEnum
from typing import Final


class Outcome(IntEnum):
    IN_FLIGHT = 0  # queued or running when the simulation ended
    SERVED = 1
    DROPPED_TOO_LONG = 2  # prompt + output exceed max_model_len or a replica's KV cache
    DROPPED_NO_REPLICA = 3  # no ready replica (e.g. scaled to zero off-hours): the ALB returns 503
    DROPPED_SPOT = 4  # on a Spot node when it was reclaimed
    DROPPED_TIMEOUT = 5  # waited longer than the client timeout
    DROPPED_TERMINATED = 6  # still held by a deleted pod when its termination grace period ended


# Requests in a pod's running heap: the request's index in its low bits (a trace holds fewer than 2**32).
REQUEST_BITS: Final = 32
REQUEST_MASK: Final = (1 << REQUEST_BITS) - 1


class PodState(IntEnum):
    PENDING = 0
    STARTING = 1
    READY = 2
    DRAINING = 3
    GONE = 4


class Node:
    __slots__ = (
        "cordoned",
        "empty_since",
        "failed",
        "group",
        "image_pulled",
        "image_ready_at",
        "launched_at",
        "pods",
        "ready",
        "removing",
        "terminated_at",
    )

    def __init__(self, group: int, launched_at: float, ready: bool) -> None:
        self.group = group
        self.launched_at = launched_at
        self.terminated_at: float | None = None
        self.ready = ready
        self.image_pulled = ready
        self.image_ready_at = launched_at
        self.pods: list[Pod] = []
        self.cordoned = False
        self.removing = False  # forced off by the off-hours scaler: drained, then terminated
        self.failed = False  # a Spot launch that found no capacity
        self.empty_since: float | None = launched_at


class Pod:
    __slots__ = (
        "busy_at_scrape",
        "busy_seconds",
        "busy_since",
        "count",
        "created_at",
        "ctx",
        "ev_kind",
        "ev_seq",
        "ev_time",
        "ev_version",
        "held",
        "kv_used",
        "node",
        "partial",
        "partial_left",
        "phase",
        "prefill_batch",
        "prefill_start",
        "ready_at",
        "run_ctx",
        "run_n",
        "run_start",
        "run_steps",
        "running",
        "serial",
        "state",
        "step_decoders",
        "timed",
        "truncated",
        "version",
        "waiting",
    )

    IDLE: Final = 0
    PREFILL: Final = 1
    DECODE: Final = 2

    def __init__(self, serial: int, created_at: float = 0.0) -> None:
        self.serial = serial
        self.created_at = created_at
        self.state = PodState.PENDING
        self.node: Node | None = None
        self.ready_at = 0.0
        self.waiting: deque[int] = deque()
        # Requests held (waiting, in a step, decoding, or part-prefilled), kept up to date by
        # planner.replica: the ALB's least-outstanding choice reads it on every arrival.
        self.held = 0
        # Decoding requests, a heap of (decode count at which it finishes) << REQUEST_BITS | request: one
        # int each, ordered as the (count, request) tuples they stand for, with no tuple to allocate.
        self.running: list[int] = []
        self.prefill_batch: list[tuple[int, int]] = []  # (request, prompt tokens) in the current step
        self.partial = -1  # the request whose prompt is part computed (chunked prefill), or -1
        self.partial_left = 0
        self.step_decoders = 0  # decoding sequences in the current mixed step
        self.prefill_start = 0.0
        self.count = 0
        self.ctx = 0.0
        self.kv_used = 0.0  # KV tokens held (allocated on demand)
        self.phase = Pod.IDLE
        self.version = 0
        self.run_start = 0.0
        self.run_steps = 0
        self.run_n = 0
        self.run_ctx = 0.0
        self.truncated = False
        self.busy_seconds = 0.0
        self.busy_since: float | None = None
        self.busy_at_scrape = 0.0
        # The pod's pending batching event (PREFILL_DONE or RUN_END; ev_kind -1: none), kept here rather
        # than in the event heap (planner.events.SimState._schedule): time, kind, sequence, version.
        self.ev_time = math.inf
        self.ev_kind = -1
        self.ev_seq = 0
        self.ev_version = 0
        self.timed = False  # in SimState.timed
