"""The replica-selection comparison (``--routing-policies``): the configured autoscaling policy run once
per routing policy on the same trace, with each replica's prefix cache where the trace has block ids.

Every run here models the prefix cache when it can (trace block ids and the version's
``enable_prefix_caching``), the least_outstanding row included, so the rows differ only in routing;
that row can therefore differ from the main table's "configured" row (which never models prefix hits).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from config.serving import ModelVersion
from planner.lean import request_figures
from planner.prefix_cache import FREE, vllm_block_size
from planner.readers import MOONCAKE_BLOCK_TOKENS
from planner.report import PolicySummary, summarise
from planner.routing import LEAST_OUTSTANDING, STAGE_BALANCER, RoutingSpec
from planner.simspec import SimResult, SimSetup
from planner.trace import Trace

Simulate = Callable[[SimSetup, Trace, int], SimResult]


@dataclass
class RoutingRow:
    policy: str
    summary: PolicySummary
    prefix_hit_rate: float | None  # cached prompt tokens / prompt tokens admitted (None: not modelled)


@dataclass
class RoutingComparison:
    rows: list[RoutingRow]
    prefix_cache_modelled: bool
    reason: str  # why the prefix cache is or is not modelled
    baseline: str = LEAST_OUTSTANDING  # the stage's own policy (planner.routing.STAGE_POLICY)


def warmup_distinct(trace: Trace, warmup_requests: int) -> Trace:
    """The warm-up copies get block ids of their own (negated), so the measured window's first requests
    do not hit prefixes left by their own copies in the warm-up; the sharing inside each part stays."""
    if trace.block_hashes is None or warmup_requests == 0:
        return trace
    hashes = trace.block_hashes.copy()
    for index in range(warmup_requests):
        hashes[index] = tuple(-1 - block for block in hashes[index])
    return replace(trace, block_hashes=hashes)


def compare_routing(
    *,
    policies: tuple[str, ...],
    setup: SimSetup,
    version: ModelVersion,
    extended: Trace,
    measured_trace: Trace,
    warmup_requests: int,
    slo_seconds: float,
    slo_quantile: float,
    simulate: Simulate,
    cache_bound: str = FREE,
) -> RoutingComparison:
    has_blocks = extended.block_hashes is not None
    enabled = version.engine.enable_prefix_caching
    modelled = has_blocks and enabled
    if modelled:
        reason = (
            f"prefix cache modelled per replica: trace blocks of {MOONCAKE_BLOCK_TOKENS} tokens, hits in "
            f"vLLM blocks of {vllm_block_size()} tokens (config/vllm_facts), LRU bounded by the replica's "
            + (
                "free KV cache (a lower bound on hits; --prefix-cache-bound capacity: the upper bound)"
                if cache_bound == FREE
                else "whole KV cache (an upper bound on hits; --prefix-cache-bound free: the lower bound)"
            )
        )
    elif has_blocks:
        reason = "the version has enable_prefix_caching off: no prefix-cache hits are modelled"
    else:
        reason = (
            "the trace has no prefix block ids, so prefix-cache hits cannot be modelled and prefix_affinity "
            "routes as least_outstanding; comparing prefix affinity needs a trace with prefix ids "
            "(Mooncake/Kimi JSON lines with hash_ids)"
        )
    trace = warmup_distinct(extended, warmup_requests)
    rows = []
    for policy in policies:
        spec = RoutingSpec.for_policy(
            policy,
            prefix_cache=modelled,
            trace_block_tokens=MOONCAKE_BLOCK_TOKENS,
            kv_block_tokens=vllm_block_size(),
            cache_bound=cache_bound,
        )
        result = simulate(replace(setup, routing=spec), trace, warmup_requests)
        summary = summarise(policy, result, measured_trace, slo_seconds, slo_quantile)
        rows.append(RoutingRow(policy, summary, hit_rate(result, measured_trace)))
    baseline = setup.routing.policy if setup.routing is not None else LEAST_OUTSTANDING
    return RoutingComparison(rows, modelled, reason, baseline)


def hit_rate(result: SimResult, trace: Trace) -> float | None:
    """Share of the admitted requests' prompt tokens found in the prefix cache (planner.lean)."""
    if result.figures is not None:
        return result.figures.prefix_hit_rate
    if result.cached_tokens is None:
        return None
    return request_figures(result, trace, math.inf).prefix_hit_rate


def _seconds(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def routing_table(comparison: RoutingComparison, slo_seconds: float) -> str:
    """Policies side by side, with the change against the stage's own policy (the ALB's or the gateway's)."""
    base = next((row for row in comparison.rows if row.policy == comparison.baseline), None)
    lines = [
        f"| routing | under {slo_seconds:g} s | TTFT p50 s | TTFT p95 s | GPU-h | $ | prefix hit rate | "
        f"vs {comparison.baseline} |",
        "|" + "---|" * 8,
    ]
    for row in comparison.rows:
        s = row.summary
        hits = "-" if row.prefix_hit_rate is None else f"{row.prefix_hit_rate:.1%}"
        if base is None or row is base:
            delta = f"(this stage: {STAGE_BALANCER[row.policy]})" if row is base else "-"
        else:
            b = base.summary
            delta = (
                f"{(s.slo_attainment - b.slo_attainment) * 100:+.1f} pts under SLO, "
                f"p95 {_seconds(s.ttft_p95)} vs {_seconds(b.ttft_p95)} s, "
                f"{s.gpu_hours - b.gpu_hours:+.1f} GPU-h"
            )
        lines.append(
            f"| {row.policy} | {s.slo_attainment:.1%} | {_seconds(s.ttft_p50)} | {_seconds(s.ttft_p95)} | "
            f"{s.gpu_hours:.1f} | {s.dollars:.2f} | {hits} | {delta} |"
        )
    return "\n".join(lines)


def routing_section(comparison: RoutingComparison, slo_seconds: float) -> str:
    return "\n".join(
        [
            "Configured autoscaling, one run per replica-selection policy (planner/routing.py); "
            f"{comparison.reason}.",
            "",
            routing_table(comparison, slo_seconds),
        ]
    )
