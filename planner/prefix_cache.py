"""Each replica's prefix cache (vLLM automatic prefix caching), for traces that carry prefix block ids.

A request whose leading prompt blocks are cached on the replica it lands on skips that part of its
prefill. Per replica an LRU of the trace's block ids: on admission the request's leading blocks are
looked up (a hit counts only up to the first miss, as vLLM's hash chain does), then all its blocks are
put at the most-recently-used end, and the LRU is cut to a bound (``--prefix-cache-bound``):

* ``free`` (default, a lower bound on hits): the request's own blocks plus the replica's free KV
  (capacity - what requests in flight reserved). Blocks of other requests in flight are not kept
  hit-able, though vLLM keeps them (a running request's blocks are shared by reference count).
* ``capacity`` (an upper bound): the replica's whole KV cache, as if every block held cached prefix
  content (vLLM keeps freed blocks' content until it reallocates them, and in-flight blocks are
  hit-able; the output tokens of requests in flight, small beside long prompts, are not set aside).

Granularity: the trace's blocks (512 tokens in the Mooncake release, planner.readers) are whole
multiples of vLLM's KV block (16 tokens, ``default_block_size`` in config/vllm_facts), so a hit of
k trace blocks is k x 512 tokens; vLLM always computes at least the prompt's last token, so a hit is
capped at the largest whole number of KV blocks below the prompt length (vllm/v1/core/kv_cache_manager:
``max_cache_hit_length = num_tokens - 1``).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from functools import cache
from pathlib import Path

FREE = "free"
CAPACITY = "capacity"
CACHE_BOUNDS = (FREE, CAPACITY)
VLLM_FACTS = Path(__file__).resolve().parent.parent / "config" / "vllm_facts" / "v0.33.0.json"


@cache
def vllm_block_size() -> int:
    """vLLM's default KV cache block size (tokens) of the pinned release, from its facts file."""
    return int(json.loads(VLLM_FACTS.read_text(encoding="utf-8"))["default_block_size"])


class PrefixCache:
    """Prefix caches of every replica of one simulation, keyed by the pod's serial number."""

    def __init__(
        self,
        block_hashes: Sequence[tuple[int, ...]],
        trace_block_tokens: int,
        kv_block_tokens: int,
        bound: str = FREE,
    ) -> None:
        if bound not in CACHE_BOUNDS:
            raise ValueError(f"prefix cache bound {bound!r}; allowed: {', '.join(CACHE_BOUNDS)}")
        self.whole_cache = bound == CAPACITY
        self.block_hashes = block_hashes
        self.trace_block_tokens = trace_block_tokens
        self.kv_block_tokens = kv_block_tokens
        self.caches: dict[int, OrderedDict[int, None]] = {}
        self.cached_tokens = [0] * len(block_hashes)

    def admit(self, pod_serial: int, request: int, prompt_tokens: int, kv_capacity: int, kv_used: int) -> int:
        """Tokens of the request's prompt already cached on the replica (its prefill skips them).

        ``kv_used`` is what requests in flight reserved, this one included."""
        blocks = self.block_hashes[request]
        lru = self.caches.setdefault(pod_serial, OrderedDict())
        matched = 0
        for block in blocks:
            if block not in lru:
                break
            matched += 1
        for block in blocks:
            lru[block] = None
            lru.move_to_end(block)
        if self.whole_cache:
            room = max(len(blocks), kv_capacity // self.trace_block_tokens)
        else:
            room = len(blocks) + max(0, kv_capacity - kv_used) // self.trace_block_tokens
        while len(lru) > room:
            lru.popitem(last=False)
        ceiling = (prompt_tokens - 1) // self.kv_block_tokens * self.kv_block_tokens
        cached = min(matched * self.trace_block_tokens, ceiling)
        self.cached_tokens[request] = cached
        return cached
