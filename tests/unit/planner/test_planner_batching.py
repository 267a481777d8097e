"""The continuous-batching model against cases computed by hand (profile: a=10 ms, b=1 ms, p=1 ms)."""

from __future__ import annotations

import math

import pytest

from planner.sim import Outcome, Simulation
from tests.unit.planner.conftest import make_profile, make_setup, make_trace


def run(
    arrival: list[float], prompt: list[int], output: list[int], **profile_overrides: object
) -> Simulation:
    trace = make_trace(arrival, prompt, output)
    simulation = Simulation(
        make_setup(make_profile(**profile_overrides)), trace.arrival, trace.prompt_tokens, trace.output_tokens
    )
    simulation.run()
    return simulation


def test_single_request_prefill_then_decode() -> None:
    sim = run([0.0], [100], [11])
    # Prefill: 10 ms + 100 x 1 ms = 0.11 s; 10 decode steps of 10 + 1 ms = 0.11 s.
    assert sim.first_token[0] == pytest.approx(0.11)
    assert sim.finished[0] == pytest.approx(0.22)


def test_requests_arriving_during_a_prefill_join_the_next_mixed_step_with_the_decoder() -> None:
    sim = run([0.0, 0.05, 0.05], [100, 100, 100], [3, 3, 5])
    # A's prefill runs 0 -> 0.11. B and C arrive meanwhile; the next step is mixed (vLLM V1, decode
    # first): A's first decode token plus both 100-token prompts, one step overhead:
    # 0.01 + 0.001 x 1 + 0.001 x 200 = 0.211 s, so both first tokens at 0.321.
    assert list(sim.first_token) == pytest.approx([0.11, 0.321, 0.321])
    # Then decode steps of three (13 ms): A's last at 0.334; of two (12 ms): B's last at 0.346; C alone
    # (11 ms) twice more: 0.368.
    assert list(sim.finished) == pytest.approx([0.334, 0.346, 0.368])


def test_arrival_joins_at_the_next_step_boundary() -> None:
    sim = run([0.0, 0.15], [100, 100], [101, 2])
    # A decodes from 0.11 in 11 ms steps; at 0.15 step 4 is running, so B is admitted at 0.154 into a
    # mixed step with A's decode: 0.01 + 0.001 + 0.1 = 0.111 s, first token at 0.265.
    assert sim.admitted[1] == pytest.approx(0.154)
    assert sim.first_token[1] == pytest.approx(0.265)


def test_a_prompt_longer_than_the_token_budget_is_chunked_over_steps() -> None:
    # Budget 64 tokens a step (max_num_batched_tokens): a 100-token prompt takes two steps,
    # 0.01 + 0.064 and 0.01 + 0.036: first token at 0.12 (one step overhead more than unchunked).
    sim = run([0.0], [100], [1], max_prefill_tokens=64)
    assert sim.first_token[0] == pytest.approx(0.12)


def test_decoders_take_their_tokens_from_the_budget_first() -> None:
    # Budget 60. A (10-token prompt, long output) decodes; B's 100-token prompt arrives at 0.05. Each
    # mixed step gives A one token and B 59: 0.01 + 0.001 + 0.059 = 0.07, then B's last 41:
    # 0.01 + 0.001 + 0.041 = 0.052.
    sim = run([0.0, 0.05], [10, 100], [200, 1], max_prefill_tokens=60)
    start = sim.admitted[1]
    assert sim.first_token[1] == pytest.approx(start + 0.07 + 0.052)


def test_kv_is_allocated_on_demand_and_the_newest_request_is_preempted_when_it_is_full() -> None:
    # KV 250 tokens; A and B: 100-token prompts, 101 output tokens, both at 0 (a reservation of prompt +
    # output, 201 each, would never run them together). A's prefill: 0.11. Mixed step, A's first decode
    # token and B's prompt: 0.01 + 0.001 + 0.1 = 0.111 (B's first token at 0.221; KV 201). Decoding
    # two (12 ms) grows KV 2 a step: 24 steps to 249 (0.509); the next would overflow, so B (the
    # newest) is preempted and frees its 124 tokens. A (25 steps done) runs its last 75 alone, 11 ms
    # each: 1.334. B then recomputes its prompt and the 25 tokens it had made (0.01 + 0.125: 1.469),
    # a step that yields its next token, and decodes its remaining 75 steps alone: 2.294.
    sim = run([0.0, 0.0], [100, 100], [101, 101], kv_capacity_tokens=250)
    assert sim.first_token == pytest.approx([0.11, 0.221])
    assert sim.finished == pytest.approx([1.334, 2.294])
    assert sim.preemptions == 1


def test_kv_cache_capacity_makes_the_second_request_wait() -> None:
    sim = run([0.0, 0.0], [100, 100], [11, 11], kv_capacity_tokens=150)
    assert sim.finished[0] == pytest.approx(0.22)
    assert sim.admitted[1] == pytest.approx(0.22)
    assert sim.first_token[1] == pytest.approx(0.33)


def test_max_num_seqs_limits_the_batch() -> None:
    sim = run([0.0, 0.0], [100, 100], [11, 11], max_num_seqs=1)
    assert sim.admitted[1] == pytest.approx(sim.finished[0])


def test_requests_longer_than_the_model_length_are_dropped_with_a_reason() -> None:
    sim = run([0.0, 0.0], [9000, 10], [10, 10])
    assert sim.outcome[0] == Outcome.DROPPED_TOO_LONG
    assert sim.outcome[1] == Outcome.SERVED


def test_step_time_sum_and_its_inverse_with_a_growing_context() -> None:
    profile = make_profile(per_context_token_seconds=1e-5)
    batch, context = 3, 1000.0
    by_loop = sum(0.010 + 0.001 * batch + 1e-5 * (context + step * batch) for step in range(7))
    assert profile.decode_run_seconds(7, batch, context) == pytest.approx(by_loop)
    assert profile.decode_steps_within(by_loop + 1e-9, batch, context) == 7
    assert profile.decode_steps_within(by_loop - 1e-6, batch, context) == 6


def test_speculative_decoding_divides_the_decode_steps() -> None:
    sim = run([0.0], [100], [11], tokens_per_step=2.5)
    # ceil(10 / 2.5) = 4 steps of 11 ms after the 0.11 s prefill.
    assert sim.finished[0] == pytest.approx(0.11 + 4 * 0.011)
    assert not math.isnan(sim.first_token[0])


def test_a_request_is_admitted_only_when_its_whole_prompt_fits_in_the_free_kv() -> None:
    # KV 180, budget 64 (scheduler_reserve_full_isl, v0.33.0's default). A's 100-token prompt takes two
    # chunks (0.074 + 0.046: first token 0.12), then 29 decode steps of 11 ms: done at 0.439, holding at
    # most 129 tokens. B's first chunk (63 tokens next to A's decode) would fit beside A, but its whole
    # 100-token prompt does not (100 + 1 + 100 > 180), so B waits for A: admitted at 0.439, first token
    # 0.12 later.
    sim = run([0.0, 0.0], [100, 100], [30, 1], kv_capacity_tokens=180, max_prefill_tokens=64)
    assert sim.finished[0] == pytest.approx(0.439)
    assert sim.admitted[1] == pytest.approx(0.439)
    assert sim.first_token[1] == pytest.approx(0.559)
