"""One vLLM replica as vLLM V1's scheduler runs it (the time model is planner.profiles.ReplicaProfile's).

Each engine step has a token budget (``max_num_batched_tokens``, the pinned release's default for the
GPU: ReplicaProfile.max_prefill_tokens). Running sequences come first: each decoding sequence takes
one token of it; what is left goes to prompt chunks, first to the one request whose prompt is part
done, then to waiting requests in arrival order (chunked prefill: a prompt longer than what is left is
split over steps; one partial prompt at a time, vLLM's max_num_partial_prefills default). A step that
carries prompt tokens is a mixed step (decode and prefill together, one step overhead); a request's
first token comes at the end of the step that finishes its prompt.

KV is allocated on demand: a request holds the tokens computed for it (its prompt chunks, then one
per decode step), not a reservation for its whole output. A waiting request is admitted only if its
whole prompt fits in the free KV (SchedulerConfig.scheduler_reserve_full_isl, True by default in
v0.33.0; no watermark, SchedulerConfig.watermark = 0.0), though its chunks are allocated step by step;
when decoding would overflow the cache, the newest running request is preempted (vLLM's
FCFS policy: ``self.running.pop()``), frees its KV and goes back to the head of the queue, to recompute
its prompt and the tokens it had generated (preemption by recomputation) when there is room; no new
request is admitted in a step that preempted. KV is counted in tokens, not 16-token blocks.

Between events a replica's batch is fixed, so a run of pure decode steps up to the next completion
(or until the cache is full) is one event; an arrival that could be admitted cuts the run at the end
of the step in progress (vLLM admits at step boundaries).
"""

from __future__ import annotations

import heapq
import math
from array import array

from planner.entities import Outcome, Pod
from planner.events import EventKind, SimState


class ReplicaBatching(SimState):
    """Requests: routing to the least-loaded ready pod, admission, mixed steps and decode runs."""

    # Per request (set up by planner.sim.Simulation): decode steps still to run, tokens generated before a
    # preemption (recomputed with the prompt on resume), and the admission sequence (the newest is
    # preempted first).
    steps_left: array[int]
    recompute: array[int]
    admit_seq: array[int]
    admissions: int
    preemptions: int

    def _drop_all(self, pod: Pod, reason: Outcome) -> None:
        held = [
            *pod.waiting,
            *(request for request, _ in pod.prefill_batch),
            *(entry[1] for entry in pod.running),
        ]
        if pod.partial >= 0 and all(request != pod.partial for request, _ in pod.prefill_batch):
            held.append(pod.partial)
        for request in held:
            self.outcome[request] = int(reason)
        pod.waiting.clear()
        pod.prefill_batch = []
        pod.running = []
        pod.partial = -1
        pod.kv_used = 0.0
        pod.ctx = 0.0
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
            and pod.kv_used + self.prompt[request] <= profile.kv_capacity_tokens
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

    def _prefill_length(self, request: int) -> int:
        return self.prompt[request] + self.recompute[request]

    def _iterate(self, pod: Pod, now: float) -> None:
        """At a step boundary: schedule the next step (mixed, with prompt chunks) or a decode run."""
        profile = self.profile
        capacity = profile.kv_capacity_tokens
        per_step = profile.tokens_per_step
        if not pod.running and pod.partial < 0:
            # Nothing held: no float drift (speculative tokens per step) can block admission.
            pod.kv_used = 0.0
            pod.ctx = 0.0
        # Decode first: when the running sequences' next tokens do not fit, preempt the newest.
        preempted = False
        while pod.running and pod.kv_used + len(pod.running) * per_step > capacity:
            self._preempt_newest(pod)
            preempted = True
        decoding = len(pod.running)
        budget = profile.max_prefill_tokens - decoding
        chunks: list[tuple[int, int]] = []
        tokens = 0
        if pod.partial >= 0 and budget > 0:
            request = pod.partial
            take = min(pod.partial_left, budget, int(capacity - pod.kv_used))
            if take > 0:
                chunks.append((request, take))
                pod.kv_used += take
                pod.partial_left -= take
                budget -= take
                tokens += take
        if not preempted:
            tokens += self._admit(pod, now, budget, chunks)
        if pod.busy_since is None:
            pod.busy_since = now
        pod.version += 1
        if chunks:
            pod.phase = Pod.PREFILL
            pod.prefill_batch = chunks
            pod.step_decoders = decoding
            duration = profile.mixed_step_seconds(decoding, pod.ctx, tokens)
            self.push(now + duration, EventKind.PREFILL_DONE, pod, pod.version)
            return
        if pod.running:
            room = int((capacity - pod.kv_used) // (decoding * per_step))
            steps = min(pod.running[0][0] - pod.count, max(1, room))
            pod.phase = Pod.DECODE
            pod.run_start = now
            pod.run_steps = steps
            pod.run_n = decoding
            pod.run_ctx = pod.ctx
            pod.truncated = False
            self.push(
                now + profile.decode_run_seconds(steps, decoding, pod.ctx),
                EventKind.RUN_END,
                pod,
                pod.version,
            )
            return
        pod.phase = Pod.IDLE
        self._stop_busy(pod, now)
        self._maybe_gone(pod, now)

    def _admit(self, pod: Pod, now: float, budget: int, chunks: list[tuple[int, int]]) -> int:
        """Waiting requests into this step, in order, while the budget, the batch and the KV cache allow."""
        profile = self.profile
        capacity = profile.kv_capacity_tokens
        waiting = pod.waiting
        timeout = self.setup.request_timeout_seconds
        seqs = len(pod.running) + (1 if pod.partial >= 0 else 0)
        cache = self.prefix_cache
        tokens = 0
        while (
            waiting
            and budget > 0
            and (pod.partial < 0 or pod.partial_left == 0)
            and seqs < profile.max_num_seqs
        ):
            request = waiting[0]
            if math.isnan(self.first_token[request]) and now - self.arrival[request] > timeout:
                waiting.popleft()
                self.outcome[request] = int(Outcome.DROPPED_TIMEOUT)
                continue
            length = self._prefill_length(request)
            # scheduler_reserve_full_isl (default True in v0.33.0): the whole prompt, with any tokens to
            # recompute, must fit in the free KV before the first chunk is admitted.
            if pod.kv_used + length > capacity:
                break
            waiting.popleft()
            if math.isnan(self.admitted[request]):
                self.admitted[request] = now
            if self.steps_left[request] < 0:
                self.steps_left[request] = profile.decode_steps(self.output[request])
            self.admissions += 1
            self.admit_seq[request] = self.admissions
            # Prefix-cache hook: the prompt's leading blocks cached on this replica are held from the start
            # and skip prefill (at least one token is always computed).
            hit = 0
            if cache is not None:
                hit = cache.admit(
                    pod.serial, request, self.prompt[request], capacity, int(pod.kv_used + length)
                )
            compute = length - hit
            take = min(compute, budget)
            chunks.append((request, take))
            pod.kv_used += hit + take
            budget -= take
            tokens += take
            seqs += 1
            if take < compute:
                pod.partial = request
                pod.partial_left = compute - take
        return tokens

    def _preempt_newest(self, pod: Pod) -> None:
        """vLLM's FCFS preemption: the newest running request frees its KV and waits at the head."""
        victim_index = max(range(len(pod.running)), key=lambda index: self.admit_seq[pod.running[index][1]])
        finish, request = pod.running.pop(victim_index)
        heapq.heapify(pod.running)
        left = finish - pod.count
        done = self.steps_left[request] - left
        held = self._prefill_length(request) + done * self.profile.tokens_per_step
        pod.kv_used -= held
        pod.ctx -= held
        # Tokens it generated in this admission (its prefill's first, then the decode steps'): recomputed
        # with its prompt on resume, whose prefill yields the next token (one decode step fewer).
        self.recompute[request] += 1 + round(done * self.profile.tokens_per_step)
        self.steps_left[request] = max(0, left - 1)
        pod.waiting.appendleft(request)
        self.preemptions += 1

    def _stop_busy(self, pod: Pod, now: float) -> None:
        if pod.busy_since is not None:
            pod.busy_seconds += now - pod.busy_since
            pod.busy_since = None

    def _prefill_done(self, now: float, subject: object, version: int) -> None:
        """End of a mixed step: the decoders advance one step, finished prompts start decoding."""
        pod = subject
        assert isinstance(pod, Pod)
        if version != pod.version:
            return
        if pod.step_decoders:
            self._advance(pod, 1, pod.step_decoders, now)
        for request, _ in pod.prefill_batch:
            if request == pod.partial:
                if pod.partial_left > 0:
                    continue  # more of its prompt in the next step
                pod.partial = -1
            if math.isnan(self.first_token[request]):
                self.first_token[request] = now
            length = self._prefill_length(request)
            steps = self.steps_left[request]
            if steps == 0:
                pod.kv_used -= length
                self._finish(request, now)
            else:
                heapq.heappush(pod.running, (pod.count + steps, request))
                pod.ctx += length
        pod.prefill_batch = []
        self._iterate(pod, now)

    def _run_end(self, now: float, subject: object, version: int) -> None:
        pod = subject
        assert isinstance(pod, Pod)
        if version != pod.version:
            return
        self._advance(pod, pod.run_steps, pod.run_n, now)
        self._iterate(pod, now)

    def _advance(self, pod: Pod, steps: int, batch: int, now: float) -> None:
        """``steps`` decode steps of ``batch`` sequences done: their KV grows; finished ones leave."""
        per_step = self.profile.tokens_per_step
        pod.count += steps
        pod.ctx += batch * steps * per_step
        pod.kv_used += batch * steps * per_step
        running = pod.running
        while running and running[0][0] <= pod.count:
            _, request = heapq.heappop(running)
            held = self._prefill_length(request) + self.steps_left[request] * per_step
            pod.ctx -= held
            pod.kv_used -= held
            self._finish(request, now)
        if not running:
            pod.ctx = 0.0

    def _finish(self, request: int, now: float) -> None:
        self.finished[request] = now
        self.outcome[request] = int(Outcome.SERVED)


def _pod_load(pod: Pod) -> int:
    partial = 1 if pod.partial >= 0 and all(request != pod.partial for request, _ in pod.prefill_batch) else 0
    return len(pod.waiting) + len(pod.running) + len(pod.prefill_batch) + partial
