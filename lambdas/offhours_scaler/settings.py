"""This function's environment-variable contract (documented in lambdas/README.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lambdas.common.settings import (
    ClusterSettings,
    SettingsError,
    env_float,
    env_int,
    env_list,
)


@dataclass(frozen=True)
class ScalerSettings:
    cluster: ClusterSettings
    namespace: str
    deployments: tuple[str, ...]
    node_groups: tuple[str, ...]
    floor_replicas: int
    floor_nodes: int
    off_hours_per_night: float
    retry_seconds: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ScalerSettings:
        settings = cls(
            cluster=ClusterSettings.from_env(env),
            namespace=env.get("MODEL_NAMESPACE", "").strip() or "models",
            deployments=env_list(env, "DEPLOYMENTS"),
            node_groups=env_list(env, "NODE_GROUPS"),
            floor_replicas=env_int(env, "FLOOR_REPLICAS", 0),
            floor_nodes=env_int(env, "FLOOR_NODES", 0),
            off_hours_per_night=env_float(env, "OFF_HOURS_PER_NIGHT", 12.0),
            retry_seconds=env_float(env, "RETRY_SECONDS", 120.0),
        )
        if not settings.deployments and not settings.node_groups:
            raise SettingsError("DEPLOYMENTS and NODE_GROUPS are both empty: nothing to scale")
        if settings.off_hours_per_night > 24:
            raise SettingsError("OFF_HOURS_PER_NIGHT must be at most 24")
        return settings
