"""This function's environment-variable contract (documented in lambdas/README.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from contract.functions import (
    DEAD_LETTER_QUEUE_ARN_ENV,
    DEPLOYMENTS_ENV,
    FLOOR_NODES_ENV,
    FLOOR_REPLICAS_ENV,
    MODEL_NAMESPACE_ENV,
    NODE_GROUPS_ENV,
    OFF_HOURS_PER_NIGHT_ENV,
    READY_CHECK_MINUTES_ENV,
    READY_CHECK_ROLE_ARN_ENV,
    READY_CHECK_SCHEDULE_GROUP_ENV,
    RETRY_SECONDS_ENV,
)
from contract.kubernetes import MODELS_NAMESPACE
from lambdas.common.settings import (
    ClusterSettings,
    SettingsError,
    env_float,
    env_int,
    env_list,
)


@dataclass(frozen=True)
class ReadyCheckSettings:
    """Where and when a scale-up books its readiness check (all set together by OpsStack)."""

    minutes: int
    schedule_group: str
    role_arn: str
    dead_letter_arn: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ReadyCheckSettings | None:
        """None when READY_CHECK_MINUTES is unset or 0: scale-ups book no check."""
        minutes = env_int(env, READY_CHECK_MINUTES_ENV, 0)
        if minutes == 0:
            return None
        names = (READY_CHECK_SCHEDULE_GROUP_ENV, READY_CHECK_ROLE_ARN_ENV, DEAD_LETTER_QUEUE_ARN_ENV)
        missing = [name for name in names if not env.get(name, "").strip()]
        if missing:
            raise SettingsError(f"{READY_CHECK_MINUTES_ENV} is set but {', '.join(missing)} not")
        group, role, dlq = (env[name].strip() for name in names)
        return cls(minutes, group, role, dlq)


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
    ready_check: ReadyCheckSettings | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ScalerSettings:
        settings = cls(
            cluster=ClusterSettings.from_env(env),
            namespace=env.get(MODEL_NAMESPACE_ENV, "").strip() or MODELS_NAMESPACE,
            deployments=env_list(env, DEPLOYMENTS_ENV),
            node_groups=env_list(env, NODE_GROUPS_ENV),
            floor_replicas=env_int(env, FLOOR_REPLICAS_ENV, 0),
            floor_nodes=env_int(env, FLOOR_NODES_ENV, 0),
            off_hours_per_night=env_float(env, OFF_HOURS_PER_NIGHT_ENV, 12.0),
            retry_seconds=env_float(env, RETRY_SECONDS_ENV, 120.0),
            ready_check=ReadyCheckSettings.from_env(env),
        )
        if not settings.deployments and not settings.node_groups:
            raise SettingsError(f"{DEPLOYMENTS_ENV} and {NODE_GROUPS_ENV} are both empty: nothing to scale")
        if settings.off_hours_per_night > 24:
            raise SettingsError(f"{OFF_HOURS_PER_NIGHT_ENV} must be at most 24")
        return settings
