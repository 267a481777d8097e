"""Replica selection: which ready replica a request goes to (the ALB today, a router in `model` mode).

Policies (``--routing-policies``):

* ``least_outstanding``: the replica with the fewest requests queued or running; ties go to the
  first in the routable list. The ALB's ``least_outstanding_requests`` (k8s_charts/model_ingress.py)
  and the simulator's default; a simulation without a RoutingSpec takes exactly this path.
* ``round_robin``: the routable replicas in turn (ALB ``round_robin``; vllm-router ``round_robin``).
* ``power_of_two``: two distinct replicas drawn at random (a seeded stream of its own), the one with
  fewer outstanding requests wins (vllm-router ``power_of_two``).
* ``least_request``: Envoy's least-request load balancer as ``model`` routing's gateway uses it
  (Envoy Gateway's BackendTrafficPolicy ``LeastRequest``, k8s_charts/model_gateway.py: equal host
  weights, so Envoy's unweighted ``N_CHOICES`` pick with ``choice_count`` 2, its default): two draws
  *with* replacement (the same replica can be drawn twice), and the second replaces the first only
  with strictly fewer active requests (``unweightedHostPickNChoices`` in Envoy's
  ``least_request_lb.cc``). The planner counts one balancer; the gateway runs two Envoy replicas,
  each counting only its own requests.
* ``prefix_affinity``: vllm-router's ``cache_aware`` (src/policies/cache_aware.rs, the SGLang
  router's design). The router keeps, per replica, the prefix blocks it routed there (its
  "approximate tree", bounded by ``max_tree_size``). When the load is imbalanced, i.e.
  ``max - min > balance_abs_threshold`` and ``max > min x balance_rel_threshold`` over the replicas'
  outstanding requests, it takes the least-loaded replica. Otherwise it takes the replica with the
  longest routed prefix of the request (ties: the one that got it most recently) if that prefix is
  more than ``cache_threshold`` of the request's blocks, else the least-loaded replica. Defaults from
  the pinned vllm-router 0.1.17 (config/router_facts, ``cache_aware_defaults``): 0.3, 64, 1.5,
  2**25. One deliberate difference: below the threshold vllm-router's approximate-tree mode picks the
  replica with the smallest tree, not the least loaded; the planner takes the least loaded (as the
  SGLang model gateway's KV-event mode does), so on a trace without shared prefixes this policy is
  exactly least_outstanding and any difference the table shows comes from affinity.
  ``max_tree_size`` counts characters; the planner converts it to blocks at 4 characters per token
  (an assumption for English text) and the trace's block size.
"""

from __future__ import annotations

import json
import random
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from planner.entities import Pod

LEAST_OUTSTANDING = "least_outstanding"
ROUND_ROBIN = "round_robin"
POWER_OF_TWO = "power_of_two"
LEAST_REQUEST = "least_request"
PREFIX_AFFINITY = "prefix_affinity"
ROUTING_POLICIES = (LEAST_OUTSTANDING, ROUND_ROBIN, POWER_OF_TWO, LEAST_REQUEST, PREFIX_AFFINITY)
# What picks a replica in each ingress.routing mode: the ALB's target groups are the pods in host and
# header routing (least_outstanding_requests, k8s_charts/model_ingress.py); in model routing the
# Envoy gateway picks the pod.
STAGE_POLICY = {"host": LEAST_OUTSTANDING, "header": LEAST_OUTSTANDING, "model": LEAST_REQUEST}
STAGE_BALANCER = {LEAST_OUTSTANDING: "the ALB", LEAST_REQUEST: "the model gateway"}
CHARACTERS_PER_TOKEN = 4  # assumption: English text; only bounds the router's per-replica memory

ROUTER_FACTS = Path(__file__).resolve().parent.parent / "config" / "router_facts" / "vllm-router-0.1.17.json"


class RoutingError(ValueError):
    """A routing policy name or setting that cannot be used."""


@cache
def cache_aware_defaults() -> dict[str, float]:
    """vllm-router's cache_aware defaults (RouterArgs in the pinned wheel; tools/vllm_router_facts.py)."""
    return dict(json.loads(ROUTER_FACTS.read_text(encoding="utf-8"))["cache_aware_defaults"])


def parse_policies(text: str) -> tuple[str, ...]:
    """``--routing-policies``: a comma-separated list of policy names, or ``all``."""
    if text.strip() == "all":
        return ROUTING_POLICIES
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in ROUTING_POLICIES]
    if unknown or not names:
        raise RoutingError(
            f"--routing-policies {text!r}: unknown {', '.join(unknown) or '(empty)'}; allowed: "
            f"all, or a comma-separated list of {', '.join(ROUTING_POLICIES)}"
        )
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class RoutingSpec:
    """How one simulation picks replicas and whether replicas keep prefix caches."""

    policy: str = LEAST_OUTSTANDING
    # Model each replica's prefix cache (needs the trace's block ids and prefix caching on).
    prefix_cache: bool = False
    cache_bound: str = "free"  # planner.prefix_cache.CACHE_BOUNDS
    trace_block_tokens: int = 512
    kv_block_tokens: int = 16
    cache_threshold: float = 0.3
    balance_abs_threshold: int = 64
    balance_rel_threshold: float = 1.5
    max_tree_blocks: int = 16384

    @classmethod
    def for_policy(
        cls,
        policy: str,
        *,
        prefix_cache: bool,
        trace_block_tokens: int,
        kv_block_tokens: int,
        cache_bound: str = "free",
    ) -> RoutingSpec:
        if policy not in ROUTING_POLICIES:
            raise RoutingError(f"routing policy {policy!r}; allowed: {', '.join(ROUTING_POLICIES)}")
        knobs = cache_aware_defaults()
        tree_tokens = knobs["max_tree_size"] / CHARACTERS_PER_TOKEN
        return cls(
            policy=policy,
            prefix_cache=prefix_cache,
            cache_bound=cache_bound,
            trace_block_tokens=trace_block_tokens,
            kv_block_tokens=kv_block_tokens,
            cache_threshold=float(knobs["cache_threshold"]),
            balance_abs_threshold=int(knobs["balance_abs_threshold"]),
            balance_rel_threshold=float(knobs["balance_rel_threshold"]),
            max_tree_blocks=max(1, int(tree_tokens // trace_block_tokens)),
        )


def least_request_stream(seed: int) -> random.Random:
    """least_request's uniform draws: a seeded stream of its own, deterministic for the seed."""
    return random.Random(seed * 7919 + 2)  # noqa: S311 - a simulation draw, not a secret


def pod_load(pod: Pod) -> int:
    """Outstanding requests: queued, in prefill and decoding (what the ALB and the router count)."""
    return len(pod.waiting) + len(pod.running) + len(pod.prefill_batch)


class Router:
    """Chooses a replica for each request under one policy; deterministic for a seed."""

    def __init__(self, spec: RoutingSpec, block_hashes: Sequence[tuple[int, ...]] | None, seed: int) -> None:
        self.spec = spec
        self.block_hashes = block_hashes
        self.turn = 0
        self.rng = np.random.default_rng([seed, 2])
        self.draw = least_request_stream(seed).random
        self.trees: dict[int, OrderedDict[int, int]] = {}  # pod serial -> block -> stamp routed
        self.stamp = 0
        self.choose = {
            LEAST_OUTSTANDING: self._least_outstanding,
            ROUND_ROBIN: self._round_robin,
            POWER_OF_TWO: self._power_of_two,
            LEAST_REQUEST: self._least_request,
            PREFIX_AFFINITY: self._prefix_affinity,
        }[spec.policy]

    def _least_outstanding(self, pods: list[Pod], request: int) -> Pod:
        pod: Pod = min(pods, key=pod_load)
        return pod

    def _round_robin(self, pods: list[Pod], request: int) -> Pod:
        pod = pods[self.turn % len(pods)]
        self.turn += 1
        return pod

    def _power_of_two(self, pods: list[Pod], request: int) -> Pod:
        if len(pods) == 1:
            return pods[0]
        first, second = (int(index) for index in self.rng.choice(len(pods), size=2, replace=False))
        return pods[second] if pod_load(pods[second]) < pod_load(pods[first]) else pods[first]

    def _least_request(self, pods: list[Pod], request: int) -> Pod:
        # Every arrival of a model-routing stage comes here, so the draws come from Python's generator
        # (a C call each), not a numpy call per request, which doubled a week's planning time.
        draw, count = self.draw, len(pods)
        first, second = pods[int(draw() * count)], pods[int(draw() * count)]
        return second if pod_load(second) < pod_load(first) else first

    def _prefix_affinity(self, pods: list[Pod], request: int) -> Pod:
        spec = self.spec
        loads = [pod_load(pod) for pod in pods]
        low, high = min(loads), max(loads)
        least = pods[loads.index(low)]
        blocks = self.block_hashes[request] if self.block_hashes is not None else ()
        if not blocks:
            return least
        chosen = least
        if not (high - low > spec.balance_abs_threshold and high > low * spec.balance_rel_threshold):
            best: tuple[int, int] = (0, -1)
            owner: Pod | None = None
            for pod in pods:
                tree = self.trees.get(pod.serial)
                if not tree:
                    continue
                matched = 0
                for block in blocks:
                    if block not in tree:
                        break
                    matched += 1
                if matched and (matched, tree[blocks[matched - 1]]) > best:
                    best, owner = (matched, tree[blocks[matched - 1]]), pod
            if owner is not None and best[0] / len(blocks) > spec.cache_threshold:
                chosen = owner
        self._learn(chosen, blocks)
        return chosen

    def _learn(self, pod: Pod, blocks: tuple[int, ...]) -> None:
        """The router's tree learns the request's prefix on the replica it chose (in either mode)."""
        self.stamp += 1
        tree = self.trees.setdefault(pod.serial, OrderedDict())
        for block in blocks:
            tree[block] = self.stamp
            tree.move_to_end(block)
        while len(tree) > self.spec.max_tree_blocks:
            tree.popitem(last=False)
