"""Replica selection (planner.routing) and the per-replica prefix cache (planner.prefix_cache)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from planner import cli
from planner.entities import Pod
from planner.plan import simulate
from planner.prefix_cache import PrefixCache, vllm_block_size
from planner.routing import (
    LEAST_OUTSTANDING,
    LEAST_REQUEST,
    POWER_OF_TWO,
    PREFIX_AFFINITY,
    ROUND_ROBIN,
    ROUTING_POLICIES,
    Router,
    RoutingError,
    RoutingSpec,
    least_request_stream,
    parse_policies,
)
from planner.routing_report import compare_routing, routing_table
from planner.sim import Simulation
from planner.simspec import SimResult, SimSetup
from planner.trace import Trace
from tests.unit.planner.conftest import make_profile, make_setup, make_trace, write_conversation_trace

BLOCK = 512


def _spec(policy: str, prefix_cache: bool = True, **overrides: object) -> RoutingSpec:
    spec = RoutingSpec.for_policy(
        policy, prefix_cache=prefix_cache, trace_block_tokens=BLOCK, kv_block_tokens=vllm_block_size()
    )
    return replace(spec, **overrides)  # type: ignore[arg-type]


def _run(setup: SimSetup, trace: Trace) -> SimResult:
    sim = Simulation(setup, trace.arrival, trace.prompt_tokens, trace.output_tokens, trace.block_hashes)
    return sim.run()


def _ttft(result: SimResult, trace: Trace) -> np.ndarray:
    return np.asarray(result.first_token - trace.arrival)


# Upstream facts the model takes its defaults from.


def test_defaults_come_from_the_pinned_router_and_vllm_facts() -> None:
    spec = RoutingSpec.for_policy(
        PREFIX_AFFINITY, prefix_cache=True, trace_block_tokens=512, kv_block_tokens=16
    )
    # vllm-router 0.1.17 RouterArgs: cache_threshold 0.3, balance_abs_threshold 64, balance_rel 1.5,
    # max_tree_size 2**25 characters = 8,388,608 tokens at 4 characters a token = 16,384 blocks of 512.
    assert (spec.cache_threshold, spec.balance_abs_threshold, spec.balance_rel_threshold) == (0.3, 64, 1.5)
    assert spec.max_tree_blocks == 16384
    assert vllm_block_size() == 16  # CacheConfig.DEFAULT_BLOCK_SIZE in vllm 0.33.0


def test_policy_names_are_parsed_and_bad_ones_refused() -> None:
    assert parse_policies("all") == ROUTING_POLICIES
    assert parse_policies("round_robin, least_outstanding,round_robin") == (ROUND_ROBIN, LEAST_OUTSTANDING)
    with pytest.raises(RoutingError, match="unknown cache_aware; allowed: all, or a comma-separated"):
        parse_policies("least_outstanding,cache_aware")


def test_cli_refuses_an_unknown_routing_policy(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--stage", "dev", "--routing-policies", "random", "--no-progress"]) == 2
    assert "--routing-policies 'random': unknown random" in capsys.readouterr().err


# The prefix cache, by hand.


def test_prefix_hit_counts_leading_blocks_up_to_the_first_miss() -> None:
    cache = PrefixCache([(1, 2, 3), (1, 2, 9, 3), (1, 2, 3)], trace_block_tokens=BLOCK, kv_block_tokens=16)
    assert cache.admit(0, 0, 1500, 10**6, 0) == 0  # cold replica
    # Blocks 1 and 2 lead, 9 misses: block 3 after it does not count (vLLM's hash chain).
    assert cache.admit(0, 1, 2000, 10**6, 0) == 2 * BLOCK
    # Every block cached: capped below the prompt's last token, in whole 16-token KV blocks:
    # (1500 - 1) // 16 * 16 = 1488 < 3 x 512.
    assert cache.admit(0, 2, 1500, 10**6, 0) == 1488
    assert cache.cached_tokens == [0, 2 * BLOCK, 1488]
    # Another replica has its own cache.
    assert cache.admit(1, 2, 1500, 10**6, 0) == 0


def test_prefix_cache_is_bounded_by_the_replicas_free_kv() -> None:
    hashes = [(1, 2), (3, 4), (1, 2)]
    roomy = PrefixCache(hashes, trace_block_tokens=BLOCK, kv_block_tokens=16)
    # admit(..., KV capacity, KV reserved in flight including this request)
    roomy.admit(0, 0, 1024, 4 * BLOCK, 2 * BLOCK)
    roomy.admit(0, 1, 1024, 4 * BLOCK, 2 * BLOCK)  # own 2 blocks + 2 free: all 4 stay
    assert roomy.admit(0, 2, 1024, 4 * BLOCK, 4 * BLOCK) == 1008  # (1024 - 1) // 16 * 16
    tight = PrefixCache(hashes, trace_block_tokens=BLOCK, kv_block_tokens=16)
    tight.admit(0, 0, 1024, 4 * BLOCK, 2 * BLOCK)
    # Another request holds 2 blocks' worth too: own 2 blocks + 0 whole free, so 1 and 2 are evicted.
    tight.admit(0, 1, 1024, 4 * BLOCK, 4 * BLOCK)
    assert tight.admit(0, 2, 1024, 4 * BLOCK, 4 * BLOCK) == 0
    # Bounded by the whole KV cache instead (the upper bound), the same sequence keeps all 4 blocks.
    whole = PrefixCache(hashes, trace_block_tokens=BLOCK, kv_block_tokens=16, bound="capacity")
    whole.admit(0, 0, 1024, 4 * BLOCK, 2 * BLOCK)
    whole.admit(0, 1, 1024, 4 * BLOCK, 4 * BLOCK)
    assert whole.admit(0, 2, 1024, 4 * BLOCK, 4 * BLOCK) == 1008
    with pytest.raises(ValueError, match="prefix cache bound 'all'; allowed: free, capacity"):
        PrefixCache(hashes, trace_block_tokens=BLOCK, kv_block_tokens=16, bound="all")


# The router's choices, by hand.


def _pods(loads: list[int]) -> list[Pod]:
    pods = []
    for serial, load in enumerate(loads):
        pod = Pod(serial)
        pod.waiting.extend(range(load))
        pods.append(pod)
    return pods


def test_round_robin_takes_turns_and_least_outstanding_takes_the_emptiest() -> None:
    pods = _pods([5, 0, 3])
    rr = Router(_spec(ROUND_ROBIN), None, seed=1)
    assert [rr.choose(pods, r).serial for r in range(4)] == [0, 1, 2, 0]
    lo = Router(_spec(LEAST_OUTSTANDING), None, seed=1)
    assert lo.choose(pods, 0).serial == 1


def test_power_of_two_picks_the_less_loaded_of_two_distinct_draws() -> None:
    pods = _pods([9, 0])
    router = Router(_spec(POWER_OF_TWO), None, seed=3)
    # With two replicas both are always drawn, so the empty one always wins.
    assert {router.choose(pods, r).serial for r in range(20)} == {1}


def test_least_request_draws_with_replacement_like_envoy() -> None:
    """Envoy's N_CHOICES pick (choice_count 2) draws twice with replacement: with two replicas both draws
    land on the busy one a quarter of the time, which vllm-router's power_of_two never allows."""
    pods = _pods([9, 0])
    router = Router(_spec(LEAST_REQUEST), None, seed=3)
    busy = sum(router.choose(pods, r).serial == 0 for r in range(4000))
    assert 0.22 < busy / 4000 < 0.28


def test_least_request_keeps_the_first_draw_on_a_tie() -> None:
    """Only strictly fewer active requests replace the first draw (Envoy's comparison is `<`)."""
    pods = _pods([2, 2, 2])
    router = Router(_spec(LEAST_REQUEST), None, seed=7)
    probe = least_request_stream(7)  # the router's stream
    for request in range(50):
        first = int(probe.random() * 3)
        probe.random()  # the second draw, which loses the tie
        assert router.choose(pods, request).serial == first


def test_each_routing_mode_plans_with_the_balancer_that_picks_its_replicas() -> None:
    from config import load_stages
    from planner.policies import stage_routing
    from tests.variants import routed_by_alb

    stages = load_stages()
    for stage in stages.values():
        spec = stage_routing(stage)
        if stage.ingress.routing_mode == "model":
            assert spec is not None
            assert spec.policy == LEAST_REQUEST
            assert not spec.prefix_cache
        else:  # the ALB's least outstanding requests: the simulator's default path
            assert spec is None
    assert any(stage.ingress.routing_mode == "model" for stage in stages.values())
    # No shipped stage routes by host (prod and staging: model, dev: header): prod's host-routed copy.
    host_routed = routed_by_alb("prod")
    assert host_routed.ingress.routing_mode == "host"
    assert stage_routing(host_routed) is None


def test_prefix_affinity_follows_the_longest_routed_prefix_within_the_load_cap() -> None:
    hashes = [(1, 2, 3, 4), (1, 2, 3, 4, 5), (1, 9, 9, 9), (1, 2, 3, 4, 6)]
    router = Router(_spec(PREFIX_AFFINITY), hashes, seed=1)
    pods = _pods([0, 0])
    assert router.choose(pods, 0).serial == 0  # nothing routed yet: least loaded, first
    pods[0].waiting.extend(range(3))  # busier, but within the cap (3 - 0 <= 64)
    assert router.choose(pods, 1).serial == 0  # 4 of 5 blocks routed there: 0.8 > 0.3
    assert router.choose(pods, 2).serial == 1  # 1 of 4 = 0.25 <= 0.3: least loaded instead
    # Imbalanced: 70 - 0 > 64 and 70 > 0 x 1.5, so the least-loaded replica wins despite affinity.
    pods[0].waiting.extend(range(67))
    assert router.choose(pods, 3).serial == 1


# Whole simulations.


def _skewed_trace() -> Trace:
    """One request a second, alternately heavy (2,200-token prompt) and light (100 tokens)."""
    count = 600
    arrival = [float(i) for i in range(count)]
    prompt = [2200 if i % 2 == 0 else 100 for i in range(count)]
    return make_trace(arrival, prompt, [1] * count, duration=count)


def test_least_load_beats_round_robin_on_a_skewed_load() -> None:
    trace = _skewed_trace()
    profile = make_profile(max_num_seqs=1, kv_capacity_tokens=10**6, prefill_per_token_seconds=0.001)
    setup = make_setup(profile, replicas=2, horizon=3600, request_timeout_seconds=10**6)
    rr = _run(replace(setup, routing=_spec(ROUND_ROBIN, prefix_cache=False)), trace)
    lo = _run(replace(setup, routing=_spec(LEAST_OUTSTANDING, prefix_cache=False)), trace)
    # Round robin sends every heavy request to one replica: 2.21 s of work every 2 s there (overloaded),
    # the other nearly idle; least outstanding moves work to the idle one.
    rr_ttft, lo_ttft = _ttft(rr, trace), _ttft(lo, trace)
    assert np.percentile(lo_ttft, 95) < np.percentile(rr_ttft, 95)
    assert np.mean(lo_ttft) < np.mean(rr_ttft)


def _conversations(shared: bool, seed: int = 5) -> Trace:
    """Poisson arrivals from 12 conversations; with ``shared`` each has an 8-block system prompt that
    all its turns repeat, then one block of its own per request."""
    rng = np.random.default_rng(seed)
    count = 1200
    arrival = np.cumsum(rng.exponential(1 / 3.0, count))
    conversation = rng.integers(0, 12, count)
    hashes = np.empty(count, dtype=object)
    for index in range(count):
        own = 1_000_000 + index
        head = (
            tuple(conversation[index] * 100 + k for k in range(8))
            if shared
            else tuple(2_000_000 + index * 10 + k for k in range(8))
        )
        hashes[index] = (*head, own)
    prompt = np.full(count, 9 * BLOCK - 100, dtype=np.int64)
    output = np.full(count, 20, dtype=np.int64)
    trace = make_trace(arrival.tolist(), prompt.tolist(), output.tolist(), duration=float(arrival[-1]) + 1)
    return replace(trace, block_hashes=hashes)


def _conversation_setup() -> SimSetup:
    # KV for about 6 requests (4,528 tokens each with output): no replica holds all 12 system prompts.
    profile = make_profile(
        max_num_seqs=4,
        kv_capacity_tokens=30_000,
        max_model_len=16_384,
        max_prefill_tokens=16_384,
        prefill_per_token_seconds=0.0002,
    )
    return make_setup(profile, replicas=4, horizon=3600, request_timeout_seconds=10**6)


def test_prefix_affinity_raises_the_hit_rate_and_lowers_ttft_on_shared_prefixes() -> None:
    trace = _conversations(shared=True)
    setup = _conversation_setup()
    lo = _run(replace(setup, routing=_spec(LEAST_OUTSTANDING)), trace)
    pa = _run(replace(setup, routing=_spec(PREFIX_AFFINITY)), trace)
    assert lo.cached_tokens is not None
    assert pa.cached_tokens is not None
    prompt = float(trace.prompt_tokens.sum())
    lo_hits, pa_hits = lo.cached_tokens.sum() / prompt, pa.cached_tokens.sum() / prompt
    # 12 system prompts spread over 4 replicas: affinity keeps each on one replica (8 of 9 blocks per
    # request hit once warm: 0.89 of the prompt tokens); least load scatters them (0.42 here).
    assert pa_hits > 0.8
    assert pa_hits > lo_hits + 0.1
    assert np.median(_ttft(pa, trace)) < np.median(_ttft(lo, trace))


def test_prefix_affinity_is_neutral_without_shared_prefixes_or_without_block_ids() -> None:
    setup = _conversation_setup()
    unique = _conversations(shared=False)
    lo = _run(replace(setup, routing=_spec(LEAST_OUTSTANDING)), unique)
    pa = _run(replace(setup, routing=_spec(PREFIX_AFFINITY)), unique)
    # No prefix is ever shared: every match rate is 0, so it routes exactly as least load.
    assert np.array_equal(pa.first_token, lo.first_token)
    assert pa.cached_tokens is not None
    assert pa.cached_tokens.sum() == 0
    # No block ids at all: the same, and no prefix cache is modelled.
    bare = replace(unique, block_hashes=None)
    default = _run(setup, bare)
    pa_bare = _run(replace(setup, routing=_spec(PREFIX_AFFINITY)), bare)
    assert np.array_equal(pa_bare.first_token, default.first_token)
    assert pa_bare.cached_tokens is None


def test_least_outstanding_spec_is_the_default_path_exactly() -> None:
    trace = _conversations(shared=True)
    setup = _conversation_setup()
    default = _run(setup, trace)  # no RoutingSpec: block ids are ignored
    spec = _run(replace(setup, routing=_spec(LEAST_OUTSTANDING, prefix_cache=False)), trace)
    assert default.cached_tokens is None
    assert np.array_equal(default.first_token, spec.first_token)
    assert np.array_equal(default.finished, spec.finished)


@pytest.mark.parametrize("policy", ROUTING_POLICIES)
def test_every_policy_is_deterministic_for_a_seed(policy: str) -> None:
    trace = _conversations(shared=True)
    setup = replace(_conversation_setup(), routing=_spec(policy), seed=4)
    first, second = _run(setup, trace), _run(setup, trace)
    assert np.array_equal(first.first_token, second.first_token)
    assert first.cached_tokens is not None
    assert second.cached_tokens is not None
    assert np.array_equal(first.cached_tokens, second.cached_tokens)


def test_power_of_two_depends_on_its_seed() -> None:
    trace = _conversations(shared=False)
    runs = [_run(replace(_conversation_setup(), routing=_spec(POWER_OF_TWO), seed=s), trace) for s in (1, 2)]
    assert not np.array_equal(runs[0].first_token, runs[1].first_token)


# The comparison the report prints.


class _Version:
    class engine:  # noqa: N801 - the shape of config.serving.ModelVersion that compare_routing reads
        enable_prefix_caching = True


def test_comparison_says_when_the_trace_cannot_show_prefix_affinity() -> None:
    trace = replace(_conversations(shared=True), block_hashes=None)
    comparison = compare_routing(
        policies=(LEAST_OUTSTANDING, PREFIX_AFFINITY),
        setup=_conversation_setup(),
        version=_Version(),  # type: ignore[arg-type]
        extended=trace,
        measured_trace=trace,
        warmup_requests=0,
        slo_seconds=2.0,
        slo_quantile=0.95,
        simulate=lambda setup, trace, warmup: simulate(setup, trace, None, warmup),
    )
    assert not comparison.prefix_cache_modelled
    assert "needs a trace with prefix ids" in comparison.reason
    table = routing_table(comparison, 2.0)
    assert "| least_outstanding |" in table
    assert "(this stage: the ALB)" in table
    assert all(row.prefix_hit_rate is None for row in comparison.rows)


def test_comparison_with_block_ids_reports_hit_rates_and_keeps_warmup_ids_apart() -> None:
    trace = _conversations(shared=True)
    comparison = compare_routing(
        policies=(LEAST_OUTSTANDING, PREFIX_AFFINITY),
        setup=_conversation_setup(),
        version=_Version(),  # type: ignore[arg-type]
        extended=trace,
        measured_trace=trace.select(np.arange(100, trace.size)),
        warmup_requests=100,
        slo_seconds=2.0,
        slo_quantile=0.95,
        simulate=lambda setup, trace, warmup: simulate(setup, trace, None, warmup),
    )
    assert comparison.prefix_cache_modelled
    rates = {row.policy: row.prefix_hit_rate for row in comparison.rows}
    affinity, least = rates[PREFIX_AFFINITY], rates[LEAST_OUTSTANDING]
    assert affinity is not None
    assert least is not None
    assert affinity > least
    assert "prefix hit rate" in routing_table(comparison, 2.0)


def test_cli_report_shows_the_policies_side_by_side_on_a_mooncake_trace(tmp_path: Path) -> None:
    trace = write_conversation_trace(tmp_path)
    argv = ["--stage", "dev", "--trace", str(trace), "--routing-policies", "all", "--workers", "1"]
    assert cli.main([*argv, "--gpu-sharing", "time-slicing:2", "--no-progress", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "dev" / "report.md").read_text()
    section = report[report.index("### Replica selection: llama-3-1-8b/v1") :]
    for policy in ROUTING_POLICIES:
        assert f"\n| {policy} |" in section
    assert "prefix cache modelled per replica" in section
    assert "## GPU sharing between models (scenario)" in report
    assert "| time-slicing x2 (interference 0.76, estimate) |" in report
