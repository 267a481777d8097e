"""Fixtures for the planner tests: small hand-checkable profiles, setups and synthetic traces."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from config import StageConfig, load_stages
from planner.profiles import ReplicaProfile
from planner.sim import Autoscaling, GroupSpec, SimSetup
from planner.startup import StartupChain, fixed
from planner.trace import Trace

START = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)  # a Tuesday afternoon: on-hours in every stage


@pytest.fixture(scope="session")
def stages() -> dict[str, StageConfig]:
    return load_stages()


def make_profile(**overrides: Any) -> ReplicaProfile:
    """a = 10 ms, b = 1 ms per sequence, no context term, 1 ms per prompt token: easy to add up."""
    values: dict[str, Any] = {
        "step_seconds": 0.010,
        "per_sequence_seconds": 0.001,
        "per_context_token_seconds": 0.0,
        "prefill_per_token_seconds": 0.001,
        "tokens_per_step": 1.0,
        "kv_capacity_tokens": 100_000,
        "max_num_seqs": 64,
        "max_model_len": 8192,
        "max_prefill_tokens": 8192,
        "description": "hand-made test profile",
    }
    values.update(overrides)
    return ReplicaProfile(**values)


def make_setup(
    profile: ReplicaProfile, replicas: int = 1, horizon: float = 100.0, **overrides: Any
) -> SimSetup:
    """One on-demand group, a static replica count, no interruptions: only batching is at work."""
    group = GroupSpec("test", "g5.xlarge", False, 1, 1, 0, 10, 1.0, False)
    setup = SimSetup(
        profile=profile,
        groups=(group,),
        autoscaling=Autoscaling(kind="static", static_replicas=replicas),
        horizon_seconds=horizon,
        scrape_seconds=15,
        metric_lag_seconds=0,
        ca_scan_seconds=10,
        ca_unneeded_seconds=600,
        ca_delay_after_add_seconds=600,
        startup=StartupChain(node_ready=fixed(240), image_pull=fixed(60), model_load=fixed(60)),
        spot_rate_per_node_second=0.0,
        spot_notice_seconds=120,
        request_timeout_seconds=600,
    )
    return replace(setup, **overrides)


def make_trace(arrival: list[float], prompt: list[int], output: list[int], duration: float = 100.0) -> Trace:
    return Trace(
        arrival=np.asarray(arrival, dtype=np.float64),
        prompt_tokens=np.asarray(prompt, dtype=np.int64),
        output_tokens=np.asarray(output, dtype=np.int64),
        start=START,
        duration_seconds=duration,
        label="test",
    )


def poisson_trace(rate: Callable[[np.ndarray], np.ndarray] | float, seconds: float, seed: int) -> Trace:
    """Arrivals from a (possibly time-varying) Poisson process by thinning; chat-like token lengths."""
    rng = np.random.default_rng(seed)
    peak = rate if isinstance(rate, float) else float(np.max(rate(np.linspace(0, seconds, 1000))))
    count = rng.poisson(peak * seconds)
    arrival = np.sort(rng.uniform(0, seconds, count))
    if not isinstance(rate, float):
        arrival = arrival[rng.random(count) < rate(arrival) / peak]
    size = arrival.size
    prompt = np.clip(rng.lognormal(6.5, 0.9, size), 10, 6000).astype(np.int64)
    output = np.clip(rng.lognormal(4.8, 0.8, size), 1, 1500).astype(np.int64)
    return Trace(arrival, prompt, output, START, seconds, f"poisson-{seed}")


def write_conversation_trace(folder: Path) -> Path:
    """A Mooncake-format JSONL of 240 requests from 6 conversations sharing 4-block prefixes (2.5 s apart)."""
    rng = np.random.default_rng(3)
    lines = []
    for index in range(240):
        conversation = int(rng.integers(0, 6))
        blocks = [conversation * 100 + k for k in range(4)] + [10_000 + index]
        record = {"timestamp": index * 2500, "input_length": 2300, "output_length": 40, "hash_ids": blocks}
        lines.append(json.dumps(record))
    path = folder / "trace.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path
