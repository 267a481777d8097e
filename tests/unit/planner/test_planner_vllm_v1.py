"""The replica's vLLM V1 parameters and what the KV-cache trigger reads with on-demand allocation."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import StageConfig
from planner.policies import profile_for
from planner.profiles import default_max_num_batched_tokens
from planner.sim import Simulation
from tests.unit.planner.conftest import make_profile, make_setup, make_trace

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("gpu", "gib", "budget"),
    [
        ("A10G", 24, 2048),
        ("L40S", 48, 2048),
        ("A100-80GB", 80, 2048),
        ("H100", 80, 8192),
        ("B200", 180, 16384),
    ],
)
def test_token_budget_is_the_pinned_vllm_default_for_the_gpu(gpu: str, gib: int, budget: int) -> None:
    # EngineArgs.get_batch_defaults, vLLM v0.33.0 (OpenAI server): >= 160 GiB 16384; >= 70 GiB and not
    # an A100 8192; else 2048.
    assert default_max_num_batched_tokens(gpu, gib) == budget


def test_shipped_profiles_use_that_default_because_the_chart_never_sets_the_flag(
    stages: dict[str, StageConfig],
) -> None:
    args = (REPO / "k8s_charts" / "vllm_args.py").read_text(encoding="utf-8")
    assert "max-num-batched-tokens" not in args
    stage = stages["prod"]
    version = stage.models[0].versions[0]
    profile = profile_for(stage, version)
    assert "A10G" in profile.description or "L40S" in profile.description
    assert profile.max_prefill_tokens == 2048


def test_kv_usage_reads_the_tokens_held_not_a_reservation_for_the_whole_output() -> None:
    # One request, 100-token prompt, 2000 output tokens, 10,000 KV tokens. At the 15 s scrape it has
    # decoded floor((15 - 0.11) / 0.011) = 1353 tokens: KV usage (100 + 1353) / 10,000, where a
    # reservation of prompt + output would read 0.21 from the start.
    profile = make_profile(kv_capacity_tokens=10_000)
    trace = make_trace([0.0], [100], [2000], duration=40.0)
    sim = Simulation(
        make_setup(profile, horizon=40.0), trace.arrival, trace.prompt_tokens, trace.output_tokens
    )
    sim.run()
    at_15 = next(scrape for scrape in sim.scrapes if scrape[0] == 15.0)
    assert at_15[2] == [pytest.approx((100 + 1353) / 10_000, abs=1 / 10_000)]
    after = next(scrape for scrape in sim.scrapes if scrape[0] == 30.0)
    assert after[2] == [0.0]  # finished at 0.11 + 1999 x 0.011 = 22.1: everything freed


def test_prefix_cache_hits_are_held_from_admission_and_skipped_in_the_prompt_chunks() -> None:
    from dataclasses import replace

    import numpy as np

    from planner.routing import RoutingSpec

    # A and B share their three 512-token prefix blocks. A (1,100-token prompt, 1 output token) computes
    # its whole prompt: 0.01 + 1.1 = 1.11. B at 2 s finds them cached on the replica, up to the last
    # full 16-token KV block before its final token: (1100 - 1) // 16 x 16 = 1088 tokens; it computes
    # the other 12: 0.01 + 0.012, first token at 2.022.
    spec = RoutingSpec.for_policy(
        "least_outstanding", prefix_cache=True, trace_block_tokens=512, kv_block_tokens=16
    )
    setup = replace(make_setup(make_profile(), horizon=10.0), routing=spec)
    trace = make_trace([0.0, 2.0], [1100, 1100], [1, 1], duration=10.0)
    hashes = np.empty(2, dtype=object)
    hashes[0], hashes[1] = (1, 2, 3), (1, 2, 3)
    sim = Simulation(setup, trace.arrival, trace.prompt_tokens, trace.output_tokens, hashes)
    result = sim.run()
    assert list(result.first_token) == pytest.approx([1.11, 2.022])
    assert result.cached_tokens is not None
    assert list(result.cached_tokens) == [0, 1088]
