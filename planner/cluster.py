"""Pods and nodes: the ReplicaSet, scheduling, node groups, the Cluster Autoscaler and Spot."""

from __future__ import annotations

import bisect
import math

from mypy_extensions import mypyc_attr

from planner.entities import Node, Outcome, Pod, PodState
from planner.events import EventKind
from planner.replica import ReplicaBatching


@mypyc_attr(allow_interpreted_subclasses=True)
class ClusterNodes(ReplicaBatching):
    """The ReplicaSet controller, the scheduler, node groups with the Cluster Autoscaler, Spot."""

    def _launch_for_initial_pod(self) -> Node | None:
        for index, group in enumerate(self.setup.groups):
            if self._group_size(index) < group.max_size:
                return self._launch(index, 0.0, ready=True)
        return None

    def _group_size(self, index: int) -> int:
        return sum(1 for node in self.nodes if node.group == index and node.terminated_at is None)

    def _launch(self, group_index: int, now: float, ready: bool = False) -> Node:
        setup = self.setup
        node = Node(group_index, now, ready)
        self.nodes.append(node)
        if now >= setup.measure_from_seconds:
            self.node_launches += 1
        spot = setup.groups[group_index].spot
        failing = not ready and spot and setup.spot_capacity_failure_probability > 0
        self.spot_draws += failing
        if failing and float(self.capacity_rng.random()) < setup.spot_capacity_failure_probability:
            # No Spot capacity: the ASG's launch fails and CA sees an unfulfillable placeholder.
            node.failed = True
            self.push(now + setup.spot_failure_detect_seconds, EventKind.LAUNCH_FAILED, node)
            return node
        if not ready:
            self.push(now + setup.startup.node_seconds(self.startup_rng), EventKind.NODE_READY, node)
        if spot and setup.spot_rate_per_node_second > 0:
            notice_at = now + float(self.rng.exponential(1.0 / setup.spot_rate_per_node_second))
            if notice_at < setup.horizon_seconds:
                self.spot_draws += 1
                self.push(notice_at, EventKind.SPOT_NOTICE, node)
                lead = setup.spot_rebalance_lead_seconds
                if lead > 0 and setup.spot_rebalance_action != "ignore":
                    self.push(max(now, notice_at - lead), EventKind.SPOT_REBALANCE, node)
        return node

    def _launch_failed(self, now: float, node: object, _: int) -> None:
        """CA drops the placeholder, backs the group off (OutOfResources) and tries the next group."""
        assert isinstance(node, Node)
        node.terminated_at = node.launched_at  # never ran: costs nothing
        self.backoff_until[node.group] = now + self.setup.ca_backoff_seconds
        if now >= self.setup.measure_from_seconds:
            self.capacity_failures += 1
        self._provision(now)

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

    def _new_pod(self, now: float = 0.0) -> Pod:
        self.pod_serial += 1
        pod = Pod(self.pod_serial, now)
        self.pods.append(pod)
        return pod

    def _bind(self, pod: Pod, node: Node, now: float) -> None:
        setup = self.setup
        pod.node = node
        node.pods.append(pod)
        node.empty_since = None
        pod.state = PodState.STARTING
        if not node.image_pulled:
            # The first pod on a node pulls the image; later ones wait for the same pull if it is
            # still running (the kubelet pulls an image once per node).
            node.image_pulled = True
            node.image_ready_at = now + setup.startup.pull_seconds(self.startup_rng)
        started = max(now, node.image_ready_at)
        pod.ready_at = started + setup.startup.serving_seconds(self.startup_rng)
        self.push(pod.ready_at, EventKind.POD_READY, pod)

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
                self._new_pod(now)
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
        self.push(now + self.setup.termination_grace_seconds, EventKind.KILL, pod)
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
        waiting = [pod.created_at for pod in self.pods if pod.state == PodState.PENDING]
        if not self.oracle and waiting and min(waiting) + self.setup.ca_new_pod_buffer_seconds > now:
            return  # all unschedulable GPU pods are still "new" (static_autoscaler.go, allPodsAreNew)
        pending = len(waiting)
        booting = sum(
            groups[node.group].replicas_per_node - len(node.pods)
            for node in self.nodes
            if node.terminated_at is None and not node.ready and not node.cordoned
        )
        needed = pending - booting
        for index, group in enumerate(groups):
            if self.backoff_until.get(index, -math.inf) > now:
                continue  # backed off after a failed launch (--initial-node-group-backoff-duration)
            while needed > 0 and self._group_size(index) < group.max_size:
                self._launch(index, now)
                needed -= group.replicas_per_node
                if self.last_scale_up != now:
                    self.scale_up_times.append(now)
                self.last_scale_up = now

    def _ca_scan(self, now: float, _: object, __: int) -> None:
        setup = self.setup
        self.push(now + setup.ca_scan_seconds, EventKind.CA_SCAN)
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
        if now - self._last_cluster_scale_up(now) < setup.ca_delay_after_add_seconds:
            return  # isScaleDownInCooldown: any scale-up in the cluster, not only this group's
        for node in self.nodes:
            if node.terminated_at is not None or not node.ready or node.pods or node.empty_since is None:
                continue
            if (
                now - node.empty_since >= setup.ca_unneeded_seconds
                and self._group_size(node.group) > self.group_min[node.group]
            ):
                node.terminated_at = now

    def _last_cluster_scale_up(self, now: float) -> float:
        """The Cluster Autoscaler's lastScaleUpTime: ours or the other versions' in the cluster."""
        others = self.setup.cluster_scale_ups
        index = bisect.bisect_right(others, now)
        return max(self.last_scale_up, others[index - 1] if index else -math.inf)

    def _spot_rebalance(self, now: float, node: object, _: int) -> None:
        """lambdas/spot_interruption on a rebalance recommendation: cordon (and taint), or drain too."""
        assert isinstance(node, Node)
        if node.terminated_at is not None:
            return
        node.cordoned = True
        if self.setup.spot_rebalance_action != "drain":
            return
        for pod in list(node.pods):
            if pod.state == PodState.READY:
                self._drain(pod, now)
            elif pod.state == PodState.STARTING:
                self._gone(pod, now)
        self._reconcile(now)

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
        self.push(now + self.setup.spot_notice_seconds, EventKind.TERMINATE, node)
        self._reconcile(now)

    def _terminate_node(self, now: float, node: object, _: int) -> None:
        assert isinstance(node, Node)
        if node.terminated_at is None:
            self._terminate(node, now)
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
