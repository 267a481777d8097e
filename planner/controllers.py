"""Controllers: metric scrapes, the HPA fed by KEDA, the off-hours scaler and the oracle's schedule."""

from __future__ import annotations

from mypy_extensions import mypyc_attr

from planner.cluster import ClusterNodes
from planner.entities import PodState
from planner.events import EventKind
from planner.hpa import HpaSpec, external_average_value_replicas, next_replicas, pods_average_replicas


@mypyc_attr(allow_interpreted_subclasses=True)
class Controllers(ClusterNodes):
    """What changes the replica count: the HPA (via KEDA's metrics), off-hours, the oracle."""

    def _scrape(self, now: float, _: object, __: int) -> None:
        setup = self.setup
        self.push(now + setup.scrape_seconds, EventKind.SCRAPE)
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
            held = pod.kv_used
            if pod.phase == pod.DECODE:  # KV grows with every step of a decode run
                done = self.profile.decode_steps_within(now - pod.run_start, pod.run_n, pod.run_ctx)
                held += min(done, pod.run_steps) * pod.run_n * self.profile.tokens_per_step
            kv.append(held / capacity)
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
        self.push(now + autoscaling.hpa_sync_seconds, EventKind.HPA_SYNC)
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

    def _oracle_change(self, now: float, subject: object, _: int) -> None:
        assert isinstance(subject, int)
        self.spec = subject
        self._reconcile(now)
