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
from array import array
from math import isnan
from operator import attrgetter
from typing import Any, Final

from mypy_extensions import mypyc_attr

from planner.entities import REQUEST_BITS, REQUEST_MASK, Outcome, Pod
from planner.events import EventKind, SimState

# Hot-path constants (looked up once, not per step; Final lets mypyc inline them).
_IDLE: Final = Pod.IDLE
_PREFILL: Final = Pod.PREFILL
_DECODE: Final = Pod.DECODE
_PREFILL_DONE: Final = int(EventKind.PREFILL_DONE)
_RUN_END: Final = int(EventKind.RUN_END)
_SERVED: Final = int(Outcome.SERVED)
_TIMEOUT: Final = int(Outcome.DROPPED_TIMEOUT)
_HELD: Final = attrgetter("held")
# Final: compiled, a static rather than a module-dict lookup by name on every call.
heappush: Final = heapq.heappush
heappop: Final = heapq.heappop


@mypyc_attr(allow_interpreted_subclasses=True)
class ReplicaBatching(SimState):
    """Requests: routing to the least-loaded ready pod, admission, mixed steps and decode runs.

    The per-step paths below run tens of millions of times a week: they read the profile's time model
    through its methods (planner.profiles, the one formula) but keep attribute lookups, calls and
    allocations out of the common cases (no prompt work: no chunk list; one routable pod: no ``min``).
    """

    # Per request (set up by planner.sim.Simulation): decode steps still to run, tokens generated before a
    # preemption (recomputed with the prompt on resume), and the admission sequence (the newest is
    # preempted first).
    steps_left: array[int]
    recompute: array[int]
    admit_seq: array[int]
    admissions: int
    preemptions: int

    def _drop_all(self, pod: Pod, reason: Outcome) -> None:
        held = list(pod.waiting)
        held += [request for request, _ in pod.prefill_batch]
        held += [entry & REQUEST_MASK for entry in pod.running]
        if pod.partial >= 0 and all(request != pod.partial for request, _ in pod.prefill_batch):
            held.append(pod.partial)
        for request in held:
            self.outcome[request] = int(reason)
        pod.waiting.clear()
        pod.prefill_batch = []
        pod.running = []
        pod.partial = -1
        pod.held = 0
        pod.kv_used = 0.0
        pod.ctx = 0.0
        pod.phase = Pod.IDLE

    def _arrive(self, request: int, now: float) -> None:
        profile = self.profile
        key: Any = request  # the columns' index, boxed once (see _admit)
        prompt: int = self.prompt[key]
        output: int = self.output[key]
        need = prompt + output
        if need > profile.max_model_len or need > profile.kv_capacity_tokens:
            self.outcome[key] = int(Outcome.DROPPED_TOO_LONG)
            return
        routable = self.routable
        if not routable:
            self.outcome[key] = int(Outcome.DROPPED_NO_REPLICA)
            return
        # Routing hook: None is the ALB's least outstanding requests, ties to the first (planner.routing
        # for the others).
        draw = self.least_request_draw
        router = self.router
        if draw is not None:
            # Router._least_request inlined (every arrival of a model-routing stage): the same two draws
            # from the router's stream, the second replaces the first only with strictly fewer requests.
            count = len(routable)
            first = routable[int(draw() * count)]
            second = routable[int(draw() * count)]
            first_load = len(first.waiting) + len(first.running) + len(first.prefill_batch)
            second_load = len(second.waiting) + len(second.running) + len(second.prefill_batch)
            pod = second if second_load < first_load else first
        elif router is not None:
            pod = router.choose(routable, request)
        elif len(routable) == 1:
            pod = routable[0]
        else:
            pod = min(routable, key=_HELD)
        waiting = pod.waiting
        was_empty = not waiting
        waiting.append(key)  # the boxed index (no second allocation)
        pod.held += 1
        phase = pod.phase
        if phase == _IDLE:
            self._iterate(pod, now)
        elif (
            phase == _DECODE
            and was_empty
            and not pod.truncated
            and len(pod.running) < profile.max_num_seqs
            and pod.kv_used + prompt <= profile.kv_capacity_tokens
        ):
            self._cut_run(pod, now)

    def _cut_run(self, pod: Pod, now: float) -> None:
        """End the decode run after the step in progress so waiting requests can join the batch."""
        profile = self.profile
        steps = profile.decode_steps_within(now - pod.run_start, pod.run_n, pod.run_ctx) + 1
        if steps >= pod.run_steps:
            return
        pod.run_steps = steps
        pod.truncated = True
        pod.version += 1
        end = pod.run_start + profile.decode_run_seconds(steps, pod.run_n, pod.run_ctx)
        self._schedule(pod, now if now > end else end, _RUN_END, pod.version)  # max(end, now)

    def _prefill_length(self, request: int) -> int:
        return self.prompt[request] + self.recompute[request]

    def _iterate(self, pod: Pod, now: float) -> None:
        """At a step boundary: schedule the next step (mixed, with prompt chunks) or a decode run."""
        profile = self.profile
        capacity = profile.kv_capacity_tokens
        per_step = profile.tokens_per_step
        running = pod.running
        if not running and pod.partial < 0:
            # Nothing held: no float drift (speculative tokens per step) can block admission.
            pod.kv_used = 0.0
            pod.ctx = 0.0
        # Decode first: when the running sequences' next tokens do not fit, preempt the newest.
        preempted = False
        while running and pod.kv_used + len(running) * per_step > capacity:
            self._preempt_newest(pod)
            preempted = True
        decoding = len(running)
        chunks: list[tuple[int, int]] | None = None  # only built when there is prompt work
        tokens = 0
        if pod.partial >= 0 or pod.waiting:
            chunks = []
            budget = profile.max_prefill_tokens - decoding
            if pod.partial >= 0 and budget > 0:
                request = pod.partial
                # min(partial_left, budget, free KV), as the builtin picks (no call, no boxing).
                take = pod.partial_left
                if budget < take:
                    take = budget
                free = int(capacity - pod.kv_used)
                if free < take:
                    take = free
                if take > 0:
                    chunks.append((request, take))
                    pod.kv_used += take
                    pod.partial_left -= take
                    budget -= take
                    tokens += take
            if not preempted and pod.waiting:
                tokens += self._admit(pod, now, budget, chunks)
        if pod.busy_since is None:
            pod.busy_since = now
        version = pod.version + 1
        pod.version = version
        if chunks:
            pod.phase = _PREFILL
            pod.prefill_batch = chunks
            pod.step_decoders = decoding
            duration = profile.mixed_step_seconds(decoding, pod.ctx, tokens)
            self._schedule(pod, now + duration, _PREFILL_DONE, version)
            return
        if running:
            ctx = pod.ctx
            steps = (running[0] >> REQUEST_BITS) - pod.count
            headroom = capacity - pod.kv_used
            step_tokens = decoding * per_step
            # min(steps, max(1, room)) with room the whole steps the free KV holds. When it holds at least
            # steps + 2 (a margin far above rounding), room > steps: the float floor division (an fmod)
            # can only pick steps, so it is left out.
            if not headroom >= (steps + 2) * step_tokens * 1.000001:
                room = int(headroom // step_tokens)
                if room < 1:
                    room = 1
                if room < steps:
                    steps = room
            pod.phase = _DECODE
            pod.run_start = now
            pod.run_steps = steps
            pod.run_n = decoding
            pod.run_ctx = ctx
            pod.truncated = False
            end = now + profile.decode_run_seconds(steps, decoding, ctx)
            self._schedule(pod, end, _RUN_END, version)
            return
        pod.phase = _IDLE
        self._stop_busy(pod, now)
        self._maybe_gone(pod, now)

    def _admit(self, pod: Pod, now: float, budget: int, chunks: list[tuple[int, int]]) -> int:
        """Waiting requests into this step, in order, while the budget, the batch and the KV cache allow."""
        profile = self.profile
        capacity = profile.kv_capacity_tokens
        max_num_seqs = profile.max_num_seqs
        waiting = pod.waiting
        timeout = self.request_timeout
        seqs = len(pod.running) + (1 if pod.partial >= 0 else 0)
        cache = self.prefix_cache
        first_token, arrival, admitted = self.first_token_view, self.arrival, self.admitted_view
        prompt, recompute, steps_left = self.prompt, self.recompute, self.steps_left
        tokens = 0
        while waiting and budget > 0 and (pod.partial < 0 or pod.partial_left == 0) and seqs < max_num_seqs:
            request = waiting[0]
            # The columns' index boxed once: compiled, an int index is boxed anew (an allocation) for
            # every access to an array column, and a request's admission makes several.
            key: Any = request
            arrived: float = arrival[key]
            if now - arrived > timeout and isnan(first_token[key]):
                waiting.popleft()
                pod.held -= 1
                self.outcome[key] = _TIMEOUT
                continue
            prompt_tokens: int = prompt[key]
            recomputed: int = recompute[key]
            length = prompt_tokens + recomputed
            # scheduler_reserve_full_isl (default True in v0.33.0): the whole prompt, with any tokens to
            # recompute, must fit in the free KV before the first chunk is admitted.
            if pod.kv_used + length > capacity:
                break
            waiting.popleft()
            if isnan(admitted[key]):
                admitted[key] = now
            left: int = steps_left[key]
            if left < 0:
                steps_left[key] = profile.decode_steps(self.output[key])
            self.admissions += 1
            self.admit_seq[key] = self.admissions
            # Prefix-cache hook: the prompt's leading blocks cached on this replica are held from the start
            # and skip prefill (at least one token is always computed).
            hit = 0
            if cache is not None:
                hit = cache.admit(pod.serial, request, prompt_tokens, capacity, int(pod.kv_used + length))
            compute = length - hit
            take = budget if budget < compute else compute  # min(compute, budget)
            chunks.append((key, take))
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
        # max(range(len(running)), key=admission sequence): the first index with the highest.
        running = pod.running
        admit_seq = self.admit_seq
        victim_index = 0
        newest: int = admit_seq[running[0] & REQUEST_MASK]
        for index in range(1, len(running)):
            sequence: int = admit_seq[running[index] & REQUEST_MASK]
            if sequence > newest:
                newest = sequence
                victim_index = index
        entry = running.pop(victim_index)
        heapq.heapify(pod.running)
        finish, request = entry >> REQUEST_BITS, entry & REQUEST_MASK
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
        first_token, prompt, recompute = self.first_token_view, self.prompt, self.recompute
        steps_left = self.steps_left
        running = pod.running
        for request, _ in pod.prefill_batch:
            if request == pod.partial:
                if pod.partial_left > 0:
                    continue  # more of its prompt in the next step
                pod.partial = -1
            key: Any = request  # boxed once (see _admit)
            if isnan(first_token[key]):
                first_token[key] = now
            prompt_tokens: int = prompt[key]
            recomputed: int = recompute[key]
            length = prompt_tokens + recomputed
            steps: int = steps_left[key]
            if steps == 0:
                pod.kv_used -= length
                pod.held -= 1
                self._finish(request, now)
            else:
                heappush(running, (pod.count + steps) << REQUEST_BITS | request)
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
        count = pod.count + steps
        pod.count = count
        pod.ctx += batch * steps * per_step
        pod.kv_used += batch * steps * per_step
        running = pod.running
        # An entry finishes at or before ``count`` exactly when it is below (count + 1) << REQUEST_BITS.
        bound = (count + 1) << REQUEST_BITS
        if running and running[0] < bound:
            prompt, recompute, steps_left = self.prompt, self.recompute, self.steps_left
            while running and running[0] < bound:
                request = heappop(running) & REQUEST_MASK
                key: Any = request  # boxed once (see _admit)
                prompt_tokens: int = prompt[key]
                recomputed: int = recompute[key]
                left: int = steps_left[key]
                held = prompt_tokens + recomputed + left * per_step
                pod.ctx -= held
                pod.kv_used -= held
                pod.held -= 1
                self._finish(request, now)
        if not running:
            pod.ctx = 0.0

    def _finish(self, request: int, now: float) -> None:
        # A hook as well: planner.calibration's closed-loop replay sends the next request from here.
        key: Any = request  # boxed once (see _admit)
        if self.keeps_finished:
            self.finished_view[key] = now
        self.outcome[key] = _SERVED
