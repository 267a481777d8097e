"""This function's environment-variable contract (documented in lambdas/README.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from contract.functions import REBALANCE_ACTION_ENV
from lambdas.common.settings import ClusterSettings, env_choice, env_float, env_int

REBALANCE_ACTIONS = ("ignore", "cordon", "drain")


@dataclass(frozen=True)
class SpotSettings:
    cluster: ClusterSettings
    rebalance_action: str
    safety_seconds: float
    concurrency: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SpotSettings:
        return cls(
            cluster=ClusterSettings.from_env(env),
            rebalance_action=env_choice(env, REBALANCE_ACTION_ENV, "cordon", REBALANCE_ACTIONS),
            safety_seconds=env_float(env, "DRAIN_SAFETY_SECONDS", 10.0),
            concurrency=env_int(env, "EVICTION_CONCURRENCY", 32, minimum=1),
        )
