"""The simulator against queueing theory and an independent reference simulation.

* one replica serving one request at a time is an M/G/1 FCFS queue: its mean wait must match
  Pollaczek-Khinchine, W = lambda E[S^2] / (2 (1 - rho));
* c replicas with per-replica queues behind a least-outstanding-requests balancer must give the same
  waits as a plain join-shortest-queue simulation written independently below;
* a batching replica under overload cannot finish requests faster than its full-batch step allows.
"""

from __future__ import annotations

import numpy as np
import pytest

from planner.sim import Outcome, Simulation
from tests.unit.planner.conftest import make_profile, make_setup

A, P = 0.010, 0.0001  # step overhead and prefill seconds per token: S = A + P x prompt


def _poisson(rate: float, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1 / rate, count))
    prompt = np.clip(rng.lognormal(6.5, 0.8, count), 1, 8000).astype(np.int64)
    return arrival, prompt


def _serve_one_at_a_time(replicas: int, arrival: np.ndarray, prompt: np.ndarray) -> Simulation:
    profile = make_profile(
        step_seconds=A,
        prefill_per_token_seconds=P,
        max_num_seqs=1,
        kv_capacity_tokens=10**7,
        max_model_len=10**5,
        max_prefill_tokens=10**5,
    )
    horizon = float(arrival[-1]) + 3600
    setup = make_setup(profile, replicas=replicas, horizon=horizon, request_timeout_seconds=10**9)
    # One output token: the prefill is the whole service, so S = A + P x prompt exactly.
    sim = Simulation(setup, arrival, prompt, np.ones_like(prompt))
    sim.run()
    return sim


def test_one_replica_is_m_g_1_and_matches_pollaczek_khinchine() -> None:
    arrival, prompt = _poisson(rate=7.0, count=200_000, seed=7)
    service = A + P * prompt
    rho = 7.0 * service.mean()
    assert 0.6 < rho < 0.8  # a loaded queue, where the formula has something to say
    expected = 7.0 * np.mean(service**2) / (2 * (1 - rho))
    sim = _serve_one_at_a_time(1, arrival, prompt)
    assert np.all(np.asarray(sim.outcome) == Outcome.SERVED)
    waited = np.asarray(sim.admitted) - arrival
    assert waited.mean() == pytest.approx(expected, rel=0.03)


def _join_shortest_queue(servers: int, arrival: np.ndarray, service: np.ndarray) -> np.ndarray:
    """Independent reference: FCFS per server, each arrival to the fewest outstanding (lowest index)."""
    free_at = np.zeros(servers)
    departures: list[list[float]] = [[] for _ in range(servers)]
    waits = np.empty(arrival.size)
    for i, (t, s) in enumerate(zip(arrival, service, strict=True)):
        outstanding = [sum(1 for d in departures[k] if d > t) for k in range(servers)]
        k = int(np.argmin(outstanding))
        start = max(t, free_at[k])
        free_at[k] = start + s
        departures[k] = [d for d in departures[k] if d > t] + [start + s]
        waits[i] = start - t
    return waits


def test_c_replicas_match_an_independent_join_shortest_queue_simulation() -> None:
    arrival, prompt = _poisson(rate=14.0, count=20_000, seed=11)
    service = A + P * prompt
    sim = _serve_one_at_a_time(3, arrival, prompt)
    reference = _join_shortest_queue(3, arrival, service)
    waited = np.asarray(sim.admitted) - arrival
    assert waited.mean() > 0.01  # queues did form
    # Same routing rule, same FCFS service: every request waits exactly as long as in the reference.
    assert np.allclose(waited, reference, rtol=0, atol=1e-9)


def test_a_batching_replica_never_beats_its_full_batch_throughput() -> None:
    # 64 sequences per step at most; each request needs 1 prefill token and 100 decode steps. A step with
    # n sequences takes A + b n, so the most requests per second a replica can finish is
    # 64 / (100 x (A + b x 64)), ignoring prefill: an upper bound the simulation must respect.
    b = 0.001
    profile = make_profile(
        step_seconds=A, per_sequence_seconds=b, prefill_per_token_seconds=P, max_num_seqs=64
    )
    count = 20_000
    arrival = np.linspace(0, 200, count)  # 100 requests/s: far beyond the bound
    setup = make_setup(profile, replicas=1, horizon=200.0)
    sim = Simulation(setup, arrival, np.ones(count, np.int64), np.full(count, 101))
    sim.run()
    served = int(np.count_nonzero(np.asarray(sim.outcome) == Outcome.SERVED))
    bound = 64 / (100 * (A + b * 64))
    assert served / 200 <= bound
    assert served / 200 > 0.8 * bound  # and a saturated replica gets close to it
