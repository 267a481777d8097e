"""One vLLM replica's continuous batching (the time model is planner.profiles.ReplicaProfile's).

Between events a replica's batch is fixed, so a run of decode steps up to the next completion is one
event; an arrival that could join the batch cuts the run at the end of the step in progress (vLLM
admits at step boundaries). A prefill pass pauses decoding (vLLM without chunked prefill; a
simplification, see planner/README.md).
"""

from __future__ import annotations

import heapq

from planner.entities import Outcome, Pod
from planner.events import EventKind, SimState


class ReplicaBatching(SimState):
    """Requests: routing to the least-loaded ready pod, admission, prefill and decode runs."""

    def _drop_all(self, pod: Pod, reason: Outcome) -> None:
        for request in [*pod.waiting, *pod.prefill_batch, *(entry[1] for entry in pod.running)]:
            self.outcome[request] = int(reason)
        pod.waiting.clear()
        pod.prefill_batch = []
        pod.running = []
        pod.phase = Pod.IDLE

    def _arrive(self, request: int, now: float) -> None:
        profile = self.profile
        need = self.prompt[request] + self.output[request]
        if need > profile.max_model_len or need > profile.kv_capacity_tokens:
            self.outcome[request] = int(Outcome.DROPPED_TOO_LONG)
            return
        if not self.routable:
            self.outcome[request] = int(Outcome.DROPPED_NO_REPLICA)
            return
        # Routing hook: None is the ALB's least outstanding requests (planner.routing for the others).
        router = self.router
        pod = min(self.routable, key=_pod_load) if router is None else router.choose(self.routable, request)
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

    def _cut_run(self, pod: Pod, now: float) -> None:
        """End the decode run after the step in progress so waiting requests can join the batch."""
        steps = self.profile.decode_steps_within(now - pod.run_start, pod.run_n, pod.run_ctx) + 1
        if steps >= pod.run_steps:
            return
        pod.run_steps = steps
        pod.truncated = True
        pod.version += 1
        end = pod.run_start + self.profile.decode_run_seconds(steps, pod.run_n, pod.run_ctx)
        self.push(max(end, now), EventKind.RUN_END, pod, pod.version)

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
        cache = self.prefix_cache
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
            # Prefix-cache hook: the prompt's leading blocks cached on this replica skip prefill.
            if cache is None:
                tokens += prompt[request]
            else:
                hit = cache.admit(
                    pod.serial, request, prompt[request], profile.kv_capacity_tokens, pod.kv_used
                )
                tokens += prompt[request] - hit
            offsets.append(profile.prefill_seconds(tokens))
            self.admitted[request] = now
        if pod.busy_since is None:
            pod.busy_since = now
        pod.version += 1
        if batch:
            pod.phase = Pod.PREFILL
            pod.prefill_batch = batch
            pod.prefill_offsets = offsets
            pod.prefill_start = now
            self.push(now + offsets[-1], EventKind.PREFILL_DONE, pod, pod.version)
            return
        if pod.running:
            steps = pod.running[0][0] - pod.count
            pod.phase = Pod.DECODE
            pod.run_start = now
            pod.run_steps = steps
            pod.run_n = running
            pod.run_ctx = pod.ctx
            pod.truncated = False
            self.push(
                now + self.profile.decode_run_seconds(steps, running, pod.ctx),
                EventKind.RUN_END,
                pod,
                pod.version,
            )
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


def _pod_load(pod: Pod) -> int:
    return len(pod.waiting) + len(pod.running) + len(pod.prefill_batch)
