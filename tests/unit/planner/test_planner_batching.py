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


def test_requests_arriving_during_a_prefill_share_the_next_pass_and_the_batch() -> None:
    sim = run([0.0, 0.05, 0.05], [100, 100, 100], [3, 3, 5])
    # A's prefill runs 0 -> 0.11. B and C share the next pass, first come first served: first tokens
    # at 0.11 + 0.01 + 0.1 = 0.22 and + 0.1 more = 0.32, when the pass ends.
    assert list(sim.first_token) == pytest.approx([0.11, 0.22, 0.32])
    # Batch of three: 13 ms steps; A and B need 2 steps (0.346); C 2 more alone at 11 ms (0.368).
    assert list(sim.finished) == pytest.approx([0.346, 0.346, 0.368])


def test_arrival_joins_at_the_next_step_boundary() -> None:
    sim = run([0.0, 0.15], [100, 100], [101, 2])
    # A decodes from 0.11 in 11 ms steps; at 0.15 step 4 is running, so B is admitted at 0.154 and
    # its prefill (0.11 s) gives its first token at 0.264.
    assert sim.admitted[1] == pytest.approx(0.154)
    assert sim.first_token[1] == pytest.approx(0.264)


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
