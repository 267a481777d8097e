"""Request-level discrete-event simulation of one model version's replicas, pods and nodes.

Replicas batch continuously (see planner.profiles for the time model). Between events a replica's
batch is fixed, so a run of decode steps up to the next completion is one event; an arrival that
could join the batch cuts the run at the end of the step in progress (vLLM admits at step
boundaries). A prefill pass pauses decoding (vLLM without chunked prefill; a simplification).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from planner.hpa import (
    HpaSpec,
    HpaState,
    external_average_value_replicas,
    next_replicas,
    pods_average_replicas,
)
from planner.profiles import ReplicaProfile


class Outcome(IntEnum):
    IN_FLIGHT = 0  # queued or running when the simulation ended
    SERVED = 1
    DROPPED_TOO_LONG = 2  # prompt + output exceed max_model_len or a replica's KV cache
    DROPPED_NO_REPLICA = 3  # no ready replica (e.g. scaled to zero off-hours): the ALB returns 503
    DROPPED_SPOT = 4  # on a Spot node when it was reclaimed
    DROPPED_TIMEOUT = 5  # waited longer than the client timeout
    DROPPED_TERMINATED = 6  # still held by a deleted pod when its termination grace period ended


class PodState(IntEnum):
    PENDING = 0
    STARTING = 1
    READY = 2
    DRAINING = 3
    GONE = 4


@dataclass(frozen=True)
class GroupSpec:
    name: str
    instance_type: str
    spot: bool
    gpus_per_node: int
    replicas_per_node: int
    min_size: int
    max_size: int
    hourly_price: float
    in_offhours: bool


@dataclass(frozen=True)
class Autoscaling:
    """How the replica count is decided: an HPA metric, a fixed count, or an oracle schedule."""

    kind: str  # "hpa", "static" or "oracle"
    hpa: HpaSpec | None = None
    queue_target: float | None = None  # vllm:num_requests_waiting per replica (external AverageValue)
    kv_target: float | None = None  # vllm:kv_cache_usage_perc per pod (Pods AverageValue)
    gpu_target: float | None = None  # DCGM_FI_DEV_GPU_UTIL per pod (Pods AverageValue)
    # KEDA's pollingInterval only drives activation (0 <-> 1); the HPA syncs on its own period
    # (kube-controller-manager --horizontal-pod-autoscaler-sync-period, default 15 s) and KEDA's
    # metrics server queries Prometheus on each HPA request.
    polling_seconds: float = 15.0
    hpa_sync_seconds: float = 15.0
    tolerance: float = 0.1
    static_replicas: int = 0
    oracle_schedule: tuple[tuple[float, int], ...] = ()


@dataclass(frozen=True)
class SimSetup:
    profile: ReplicaProfile
    groups: tuple[GroupSpec, ...]  # in Cluster Autoscaler priority order (Spot first)
    autoscaling: Autoscaling
    horizon_seconds: float
    scrape_seconds: float
    metric_lag_seconds: float
    ca_scan_seconds: float
    ca_unneeded_seconds: float
    ca_delay_after_add_seconds: float
    node_provision_seconds: float
    image_pull_seconds: float
    model_load_seconds: float
    spot_rate_per_node_second: float
    spot_notice_seconds: float
    request_timeout_seconds: float
    # A deleted pod is killed this long after deletion (the chart's terminationGracePeriodSeconds).
    termination_grace_seconds: float = 120.0
    # (seconds from start, off_hours) switch points; the first is at 0.
    offhours: tuple[tuple[float, bool], ...] = ((0.0, False),)
    offhours_floor_replicas: int = 0
    offhours_floor_nodes: int = 0
    # The replica count every HPA policy starts from (clamped to its bounds): one common steady start.
    initial_replicas: int | None = None
    seed: int = 0
    # Costs and the time series count from here (the warm-up before it is not measured).
    measure_from_seconds: float = 0.0

    @property
    def cold_start_seconds(self) -> float:
        return self.node_provision_seconds + self.image_pull_seconds + self.model_load_seconds


@dataclass
class SimResult:
    first_token: np.ndarray
    admitted: np.ndarray
    finished: np.ndarray
    outcome: np.ndarray
    series_time: np.ndarray
    series_desired: np.ndarray
    series_ready: np.ndarray
    node_seconds: dict[str, float]
    gpu_seconds: float
    dollars: float
    node_launches: int
    spot_interruptions: int
    events: int = 0
    # Seconds from the last change of the desired replica count in the warm-up to its end (None:
    # no change in the warm-up; small values mean the controllers were still moving when measured).
    warmup_settled_seconds: float | None = None
    notes: list[str] = field(default_factory=list)


class Node:
    __slots__ = (
        "cordoned",
        "empty_since",
        "group",
        "image_pulled",
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
        self.pods: list[Pod] = []
        self.cordoned = False
        self.removing = False  # forced off by the off-hours scaler: drained, then terminated
        self.empty_since: float | None = launched_at


class Pod:
    __slots__ = (
        "busy_at_scrape",
        "busy_seconds",
        "busy_since",
        "count",
        "ctx",
        "kv_used",
        "node",
        "phase",
        "prefill_batch",
        "prefill_offsets",
        "prefill_start",
        "ready_at",
        "run_ctx",
        "run_n",
        "run_start",
        "run_steps",
        "running",
        "serial",
        "state",
        "truncated",
        "version",
        "waiting",
    )

    IDLE, PREFILL, DECODE = 0, 1, 2

    def __init__(self, serial: int) -> None:
        self.serial = serial
        self.state = PodState.PENDING
        self.node: Node | None = None
        self.ready_at = 0.0
        self.waiting: deque[int] = deque()
        self.running: list[tuple[int, int]] = []  # (decode count at which it finishes, request)
        self.prefill_batch: list[int] = []
        self.prefill_offsets: list[float] = []
        self.prefill_start = 0.0
        self.count = 0
        self.ctx = 0.0
        self.kv_used = 0
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


# Event kinds, ordered so that simultaneous events resolve deterministically.
_NODE_READY, _POD_READY, _PREFILL_DONE, _RUN_END, _TERMINATE, _NOTICE = 0, 1, 2, 3, 4, 5
_OFFHOURS, _ORACLE, _SCRAPE, _HPA, _CA_SCAN, _KILL = 6, 7, 8, 9, 10, 11


class Simulation:
    """One run; call :meth:`run` once."""

    def __init__(self, setup: SimSetup, arrival: np.ndarray, prompt: np.ndarray, output: np.ndarray) -> None:
        self.setup = setup
        self.profile = setup.profile
        self.arrival: list[float] = arrival.tolist()
        self.prompt: list[int] = prompt.tolist()
        self.output: list[int] = output.tolist()
        n = len(self.arrival)
        self.first_token = [math.nan] * n
        self.admitted = [math.nan] * n
        self.finished = [math.nan] * n
        self.outcome = [int(Outcome.IN_FLIGHT)] * n
        self.events: list[tuple[float, int, int, object, int]] = []  # time, kind, sequence, subject, version
        self.sequence = 0
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
        self.scrapes: list[tuple[float, int, list[float], list[float], int]] = []
        self.series: list[tuple[float, int, int]] = []
        self.rng = np.random.default_rng(setup.seed)
        self.node_launches = 0
        self.spot_interruptions = 0
        self.event_count = 0
        self.oracle = setup.autoscaling.kind == "oracle"
        if self.oracle:
            self.group_min = [0] * len(setup.groups)  # the lower bound keeps no idle floor

    # Event plumbing.

    def push(self, time: float, kind: int, subject: object = None, version: int = 0) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (time, kind, self.sequence, subject, version))

    def run(self, progress: object = None) -> SimResult:
        setup = self.setup
        self._initial_state()
        for moment, is_off in setup.offhours[1:]:
            self.push(moment, _OFFHOURS, is_off)
        for moment, desired in setup.autoscaling.oracle_schedule:
            self.push(moment, _ORACLE, desired)
        self.push(0.0, _SCRAPE)
        if setup.autoscaling.kind == "hpa":
            self.push(setup.autoscaling.hpa_sync_seconds, _HPA)
        self.push(setup.ca_scan_seconds, _CA_SCAN)
        arrivals = self.arrival
        n = len(arrivals)
        index = 0
        horizon = setup.horizon_seconds
        events = self.events
        handlers = {
            _NODE_READY: self._node_ready,
            _POD_READY: self._pod_ready,
            _PREFILL_DONE: self._prefill_done,
            _RUN_END: self._run_end,
            _TERMINATE: self._terminate_node,
            _NOTICE: self._spot_notice,
            _OFFHOURS: self._offhours,
            _ORACLE: self._oracle_change,
            _SCRAPE: self._scrape,
            _HPA: self._hpa_sync,
            _CA_SCAN: self._ca_scan,
            _KILL: self._kill,
        }
        update = getattr(progress, "update", None)
        reported = 0
        while True:
            next_event = events[0][0] if events else math.inf
            if index < n and arrivals[index] <= next_event:
                if arrivals[index] > horizon:
                    break
                self._arrive(index, arrivals[index])
                index += 1
                if update is not None and index - reported >= 5000:
                    update(index - reported)
                    reported = index
                continue
            if next_event > horizon:
                break
            time, kind, _, subject, version = heapq.heappop(events)
            self.event_count += 1
            handlers[kind](time, subject, version)
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

    def _launch_for_initial_pod(self) -> Node | None:
        for index, group in enumerate(self.setup.groups):
            if self._group_size(index) < group.max_size:
                return self._launch(index, 0.0, ready=True)
        return None

    # Nodes.

    def _group_size(self, index: int) -> int:
        return sum(1 for node in self.nodes if node.group == index and node.terminated_at is None)

    def _launch(self, group_index: int, now: float, ready: bool = False) -> Node:
        setup = self.setup
        node = Node(group_index, now, ready)
        self.nodes.append(node)
        if now >= setup.measure_from_seconds:
            self.node_launches += 1
        if not ready:
            self.push(now + setup.node_provision_seconds, _NODE_READY, node)
        if setup.groups[group_index].spot and setup.spot_rate_per_node_second > 0:
            notice_at = now + float(self.rng.exponential(1.0 / setup.spot_rate_per_node_second))
            if notice_at < setup.horizon_seconds:
                self.push(notice_at, _NOTICE, node)
        return node

    def _node_ready(self, now: float, node: object, _: int) -> None:
        assert isinstance(node, Node)
        if node.terminated_at is not None:
            return
        node.ready = True
        node.empty_since = now
        self._schedule_pending(now)

    def _free_node(self, pod: Pod, ready_only: bool = True) -> Node | None:
        groups = self.setup.groups
        best: Node | None = None
        for node in self.nodes:
            if node.terminated_at is not None or node.cordoned or (ready_only and not node.ready):
                continue
            if len(node.pods) >= groups[node.group].replicas_per_node:
                continue
            if best is None or node.group < best.group:
                best = node
        return best

    def _terminate(self, node: Node, now: float) -> None:
        node.terminated_at = now
        for pod in list(node.pods):
            self._drop_all(pod, Outcome.DROPPED_SPOT)
            self._gone(pod, now)

    # Pods.

    def _new_pod(self) -> Pod:
        self.pod_serial += 1
        pod = Pod(self.pod_serial)
        self.pods.append(pod)
        return pod

    def _bind(self, pod: Pod, node: Node, now: float) -> None:
        setup = self.setup
        pod.node = node
        node.pods.append(pod)
        node.empty_since = None
        pod.state = PodState.STARTING
        startup = setup.model_load_seconds + (0.0 if node.image_pulled else setup.image_pull_seconds)
        node.image_pulled = True
        pod.ready_at = now + startup
        self.push(pod.ready_at, _POD_READY, pod)

    def _pod_ready(self, now: float, pod: object, _: int) -> None:
        assert isinstance(pod, Pod)
        if pod.state != PodState.STARTING:
            return
        pod.state = PodState.READY
        self.routable.append(pod)

    def _alive(self) -> list[Pod]:
        return [pod for pod in self.pods if pod.state <= PodState.READY]

    def _reconcile(self, now: float) -> None:
        """The ReplicaSet controller: create or delete pods to match the spec."""
        alive = self._alive()
        if len(alive) < self.spec:
            for _ in range(self.spec - len(alive)):
                self._new_pod()
            self._schedule_pending(now)
            if self.oracle:
                self._provision(now)
        elif len(alive) > self.spec:
            # Deletion order of the ReplicaSet controller: unscheduled, then not ready, then the pod
            # ready for the shortest time.
            ranked = sorted(alive, key=lambda pod: (pod.state, -pod.ready_at, -pod.serial))
            for pod in ranked[: len(alive) - self.spec]:
                self._delete(pod, now)

    def _delete(self, pod: Pod, now: float) -> None:
        if pod.state == PodState.READY:
            self._drain(pod, now)
        else:
            self._gone(pod, now)

    def _drain(self, pod: Pod, now: float) -> None:
        """Out of the load balancer; finishes what it holds until the grace period ends."""
        pod.state = PodState.DRAINING
        self.routable.remove(pod)
        self.push(now + self.setup.termination_grace_seconds, _KILL, pod)
        self._maybe_gone(pod, now)

    def _kill(self, now: float, pod: object, _: int) -> None:
        assert isinstance(pod, Pod)
        if pod.state == PodState.DRAINING:
            self._drop_all(pod, Outcome.DROPPED_TERMINATED)
            self._gone(pod, now)

    def _maybe_gone(self, pod: Pod, now: float) -> None:
        if pod.state == PodState.DRAINING and pod.phase == Pod.IDLE and not pod.waiting and not pod.running:
            self._gone(pod, now)

    def _gone(self, pod: Pod, now: float) -> None:
        if pod.state == PodState.READY:
            self.routable.remove(pod)
        pod.state = PodState.GONE
        pod.version += 1
        self._stop_busy(pod, now)
        node = pod.node
        self.pods.remove(pod)
        if node is not None:
            node.pods.remove(pod)
            if not node.pods:
                node.empty_since = now
                if self.oracle and node.terminated_at is None:
                    node.terminated_at = now  # the oracle releases capacity the moment it is idle
            if node.terminated_at is None and any(other.state == PodState.PENDING for other in self.pods):
                self._schedule_pending(now)  # the freed GPUs can take a waiting pod

    def _schedule_pending(self, now: float) -> None:
        for pod in self.pods:
            if pod.state != PodState.PENDING:
                continue
            node = self._free_node(pod)
            if node is None:
                return
            self._bind(pod, node, now)

    def _provision(self, now: float) -> None:
        """Cluster Autoscaler scale-up: nodes for pending pods not covered by nodes still booting."""
        groups = self.setup.groups
        pending = sum(1 for pod in self.pods if pod.state == PodState.PENDING)
        booting = sum(
            groups[node.group].replicas_per_node - len(node.pods)
            for node in self.nodes
            if node.terminated_at is None and not node.ready and not node.cordoned
        )
        needed = pending - booting
        for index, group in enumerate(groups):
            while needed > 0 and self._group_size(index) < group.max_size:
                self._launch(index, now)
                needed -= group.replicas_per_node
                self.last_scale_up = now

    def _ca_scan(self, now: float, _: object, __: int) -> None:
        setup = self.setup
        self.push(now + setup.ca_scan_seconds, _CA_SCAN)
        # Managed node groups keep their minimum (the ASG launches at once, not the autoscaler).
        for index in range(len(setup.groups)):
            for _ in range(self.group_min[index] - self._group_size(index)):
                self._launch(index, now)
        for node in self.nodes:
            if node.removing and node.terminated_at is None and not node.pods:
                node.terminated_at = now  # the node group's scale-in finished draining it
        if self.oracle:
            return
        self._provision(now)
        if now - self.last_scale_up < setup.ca_delay_after_add_seconds:
            return
        for node in self.nodes:
            if node.terminated_at is not None or not node.ready or node.pods or node.empty_since is None:
                continue
            if (
                now - node.empty_since >= setup.ca_unneeded_seconds
                and self._group_size(node.group) > self.group_min[node.group]
            ):
                node.terminated_at = now

    # Spot interruptions.

    def _spot_notice(self, now: float, node: object, _: int) -> None:
        assert isinstance(node, Node)
        if node.terminated_at is not None:
            return
        if now >= self.setup.measure_from_seconds:
            self.spot_interruptions += 1
        node.cordoned = True
        for pod in list(node.pods):
            if pod.state == PodState.READY:
                self._drain(pod, now)
            elif pod.state == PodState.STARTING:
                self._gone(pod, now)
        self.push(now + self.setup.spot_notice_seconds, _TERMINATE, node)
        self._reconcile(now)

    def _terminate_node(self, now: float, node: object, _: int) -> None:
        assert isinstance(node, Node)
        if node.terminated_at is None:
            self._terminate(node, now)
            self._reconcile(now)

    def _drop_all(self, pod: Pod, reason: Outcome) -> None:
        for request in [*pod.waiting, *pod.prefill_batch, *(entry[1] for entry in pod.running)]:
            self.outcome[request] = int(reason)
        pod.waiting.clear()
        pod.prefill_batch = []
        pod.running = []
        pod.phase = Pod.IDLE

    # Requests and batching.

    def _arrive(self, request: int, now: float) -> None:
        profile = self.profile
        need = self.prompt[request] + self.output[request]
        if need > profile.max_model_len or need > profile.kv_capacity_tokens:
            self.outcome[request] = int(Outcome.DROPPED_TOO_LONG)
            return
        if not self.routable:
            self.outcome[request] = int(Outcome.DROPPED_NO_REPLICA)
            return
        pod = min(self.routable, key=_pod_load)
        was_empty = not pod.waiting
        pod.waiting.append(request)
        if pod.phase == Pod.IDLE:
            self._iterate(pod, now)
        elif (
            pod.phase == Pod.DECODE
            and was_empty
            and not pod.truncated
            and len(pod.running) < profile.max_num_seqs
            and pod.kv_used + need <= profile.kv_capacity_tokens
        ):
            self._cut_run(pod, now)

    def _steps_seconds(self, steps: int, batch: int, context: float) -> float:
        profile = self.profile
        per_step = (
            profile.step_seconds
            + profile.per_sequence_seconds * batch
            + profile.per_context_token_seconds * context
        )
        growth = profile.per_context_token_seconds * batch * profile.tokens_per_step
        return steps * per_step + growth * steps * (steps - 1) / 2

    def _steps_done(self, elapsed: float, batch: int, context: float) -> int:
        profile = self.profile
        growth = profile.per_context_token_seconds * batch * profile.tokens_per_step / 2
        linear = (
            profile.step_seconds
            + profile.per_sequence_seconds * batch
            + profile.per_context_token_seconds * context
            - growth
        )
        if growth <= 0:
            return int(elapsed / linear)
        return int((-linear + math.sqrt(linear * linear + 4 * growth * elapsed)) / (2 * growth))

    def _cut_run(self, pod: Pod, now: float) -> None:
        """End the decode run after the step in progress so waiting requests can join the batch."""
        steps = self._steps_done(now - pod.run_start, pod.run_n, pod.run_ctx) + 1
        if steps >= pod.run_steps:
            return
        pod.run_steps = steps
        pod.truncated = True
        pod.version += 1
        end = pod.run_start + self._steps_seconds(steps, pod.run_n, pod.run_ctx)
        self.push(max(end, now), _RUN_END, pod, pod.version)

    def _iterate(self, pod: Pod, now: float) -> None:
        """At a step boundary: admit what fits (prefill), else decode until the next completion."""
        profile = self.profile
        prompt, output, arrival = self.prompt, self.output, self.arrival
        timeout = self.setup.request_timeout_seconds
        waiting = pod.waiting
        batch: list[int] = []
        offsets: list[float] = []
        tokens = 0
        running = len(pod.running)
        while waiting:
            request = waiting[0]
            if now - arrival[request] > timeout:
                waiting.popleft()
                self.outcome[request] = int(Outcome.DROPPED_TIMEOUT)
                continue
            need = prompt[request] + output[request]
            if (
                running + len(batch) >= profile.max_num_seqs
                or pod.kv_used + need > profile.kv_capacity_tokens
            ):
                break
            if batch and tokens + prompt[request] > profile.max_prefill_tokens:
                break
            waiting.popleft()
            batch.append(request)
            pod.kv_used += need
            tokens += prompt[request]
            offsets.append(profile.step_seconds + profile.prefill_per_token_seconds * tokens)
            self.admitted[request] = now
        if pod.busy_since is None:
            pod.busy_since = now
        pod.version += 1
        if batch:
            pod.phase = Pod.PREFILL
            pod.prefill_batch = batch
            pod.prefill_offsets = offsets
            pod.prefill_start = now
            self.push(now + offsets[-1], _PREFILL_DONE, pod, pod.version)
            return
        if pod.running:
            steps = pod.running[0][0] - pod.count
            pod.phase = Pod.DECODE
            pod.run_start = now
            pod.run_steps = steps
            pod.run_n = running
            pod.run_ctx = pod.ctx
            pod.truncated = False
            self.push(now + self._steps_seconds(steps, running, pod.ctx), _RUN_END, pod, pod.version)
            return
        pod.phase = Pod.IDLE
        self._stop_busy(pod, now)
        self._maybe_gone(pod, now)

    def _stop_busy(self, pod: Pod, now: float) -> None:
        if pod.busy_since is not None:
            pod.busy_seconds += now - pod.busy_since
            pod.busy_since = None

    def _prefill_done(self, now: float, subject: object, version: int) -> None:
        pod = subject
        assert isinstance(pod, Pod)
        if version != pod.version:
            return
        profile = self.profile
        for request in pod.prefill_batch:
            # Chunked prefill serves admitted prompts first come, first served: each one's first token
            # comes when its own tokens are done, not at the end of the whole pass.
            self.first_token[request] = pod.prefill_start + pod.prefill_offsets.pop(0)
            steps = profile.decode_steps(self.output[request])
            if steps == 0:
                self._finish(pod, request, now)
            else:
                heapq.heappush(pod.running, (pod.count + steps, request))
                pod.ctx += self.prompt[request] + 1
        pod.prefill_batch = []
        self._iterate(pod, now)

    def _run_end(self, now: float, subject: object, version: int) -> None:
        pod = subject
        assert isinstance(pod, Pod)
        if version != pod.version:
            return
        pod.count += pod.run_steps
        pod.ctx += pod.run_n * pod.run_steps * self.profile.tokens_per_step
        running = pod.running
        while running and running[0][0] <= pod.count:
            _, request = heapq.heappop(running)
            self._finish(pod, request, now)
            pod.ctx -= self.prompt[request] + self.output[request]
        if not running:
            pod.ctx = 0.0
        self._iterate(pod, now)

    def _finish(self, pod: Pod, request: int, now: float) -> None:
        self.finished[request] = now
        self.outcome[request] = int(Outcome.SERVED)
        pod.kv_used -= self.prompt[request] + self.output[request]

    # Metrics, autoscaling, schedules.

    def _scrape(self, now: float, _: object, __: int) -> None:
        setup = self.setup
        self.push(now + setup.scrape_seconds, _SCRAPE)
        waiting = 0
        kv: list[float] = []
        utilisation: list[float] = []
        capacity = self.profile.kv_capacity_tokens
        for pod in self.pods:
            if pod.state not in (PodState.READY, PodState.DRAINING):
                continue
            # Prometheus scrapes a terminating pod until it exits, so the summed External metrics
            # include it; the HPA's own Pods metrics skip pods being deleted (replica_calculator.go).
            waiting += len(pod.waiting)
            kv.append(pod.kv_used / capacity)
            busy = pod.busy_seconds + (now - pod.busy_since if pod.busy_since is not None else 0.0)
            if pod.state == PodState.READY:
                utilisation.append(min(1.0, (busy - pod.busy_at_scrape) / setup.scrape_seconds))
            pod.busy_at_scrape = busy
        starting = sum(1 for pod in self.pods if pod.state in (PodState.PENDING, PodState.STARTING))
        self.scrapes.append((now, waiting, kv, utilisation, starting))
        self._record_series(now)

    def _record_series(self, now: float) -> None:
        self.series.append((now, self.spec, len(self.routable)))

    def _visible_scrape(self, now: float) -> tuple[float, int, list[float], list[float], int] | None:
        cutoff = now - self.setup.metric_lag_seconds
        for scrape in reversed(self.scrapes):
            if scrape[0] <= cutoff:
                return scrape
        return None

    def _hpa_sync(self, now: float, _: object, __: int) -> None:
        autoscaling = self.setup.autoscaling
        self.push(now + autoscaling.hpa_sync_seconds, _HPA)
        if not self.hpa_enabled or self.spec == 0 or autoscaling.hpa is None:
            return  # KEDA paused (no HPA), or the target is at zero (the HPA is then disabled)
        scrape = self._visible_scrape(now)
        if scrape is None or not scrape[2]:
            return
        _, waiting, kv, utilisation, starting = scrape
        proposals = []
        tolerance = autoscaling.tolerance
        if autoscaling.queue_target is not None:
            proposals.append(
                external_average_value_replicas(self.spec, waiting, autoscaling.queue_target, tolerance)
            )
        if autoscaling.kv_target is not None:
            # KEDA's kv-cache trigger: sum(vllm:kv_cache_usage_perc), External metric, AverageValue.
            proposals.append(
                external_average_value_replicas(self.spec, sum(kv), autoscaling.kv_target, tolerance)
            )
        if autoscaling.gpu_target is not None and utilisation:
            proposals.append(
                pods_average_replicas(self.spec, utilisation, autoscaling.gpu_target, starting, tolerance)
            )
        spec = HpaSpec(
            self.replica_min,
            autoscaling.hpa.max_replicas,
            autoscaling.hpa.scale_up,
            autoscaling.hpa.scale_down,
        )
        desired = next_replicas(max(proposals), self.spec, now, spec, self.hpa_state)
        if desired != self.spec:
            self.spec = desired
            self._reconcile(now)

    def _offhours(self, now: float, subject: object, _: int) -> None:
        """The off-hours scaler's run (lambdas/offhours_scaler): its order and its records.

        Off: a Deployment above the floor gets its count recorded and is set to the floor, and KEDA is
        paused there (so no HPA acts at night); then each off-hours node group's size is recorded and
        forced down to floor_nodes (its minimum lowered with it); EKS drains the removed nodes.
        On: node groups back to their recorded size first, then KEDA resumes and the Deployment gets
        max(recorded, current) replicas.
        """
        setup = self.setup
        off = bool(subject)
        if off:
            if self.hpa_enabled and self.spec > setup.offhours_floor_replicas:
                self.recorded_replicas = self.spec
                self.spec = setup.offhours_floor_replicas
                self.hpa_enabled = False
                self._reconcile(now)
            for index, group in enumerate(setup.groups):
                if group.in_offhours and index not in self.recorded_nodes:
                    self._force_group_down(index, now)
            return
        for index, recorded in sorted(self.recorded_nodes.items()):
            self.group_min[index] = setup.groups[index].min_size
            for _ in range(recorded - self._group_size(index)):
                self._launch(index, now)
        self.recorded_nodes = {}
        if self.recorded_replicas is not None:
            self.spec = max(self.recorded_replicas, self.spec)
            self.recorded_replicas = None
            self.hpa_enabled = True
            self._reconcile(now)

    def _force_group_down(self, index: int, now: float) -> None:
        floor = self.setup.offhours_floor_nodes
        live = [node for node in self.nodes if node.group == index and node.terminated_at is None]
        self.recorded_nodes[index] = len(live)
        target = min(len(live), floor)
        self.group_min[index] = min(self.setup.groups[index].min_size, target)
        # Emptiest first, then the newest (an estimate of the ASG's choice; both free the most work).
        ranked = sorted(live, key=lambda node: (len(node.pods), -node.launched_at))
        for node in ranked[: len(live) - target]:
            node.cordoned = True
            node.removing = True
            for pod in list(node.pods):
                self._delete(pod, now)
            if not node.pods:
                node.terminated_at = now
        self._reconcile(now)

    def _oracle_change(self, now: float, subject: object, _: int) -> None:
        assert isinstance(subject, int)
        self.spec = subject
        self._reconcile(now)

    # Result.

    def _result(self) -> SimResult:
        setup = self.setup
        horizon = setup.horizon_seconds
        node_seconds: dict[str, float] = {group.name: 0.0 for group in setup.groups}
        gpu_seconds = 0.0
        dollars = 0.0
        for node in self.nodes:
            group = setup.groups[node.group]
            end = horizon if node.terminated_at is None else min(node.terminated_at, horizon)
            seconds = max(0.0, end - max(node.launched_at, setup.measure_from_seconds))
            node_seconds[group.name] += seconds
            gpu_seconds += seconds * group.gpus_per_node
            dollars += seconds / 3600 * group.hourly_price
        series = np.asarray(self.series, dtype=np.float64).reshape(-1, 3)
        return SimResult(
            first_token=np.asarray(self.first_token),
            admitted=np.asarray(self.admitted),
            finished=np.asarray(self.finished),
            outcome=np.asarray(self.outcome, dtype=np.int8),
            series_time=series[:, 0],
            series_desired=series[:, 1],
            series_ready=series[:, 2],
            node_seconds=node_seconds,
            gpu_seconds=gpu_seconds,
            dollars=dollars,
            node_launches=self.node_launches,
            spot_interruptions=self.spot_interruptions,
            events=self.event_count,
        )


def _pod_load(pod: Pod) -> int:
    return len(pod.waiting) + len(pod.running) + len(pod.prefill_batch)
