"""Environment-variable parsing shared by the handlers; read on every invocation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from contract.functions import CLUSTER_CA_DATA_ENV, CLUSTER_ENDPOINT_ENV, CLUSTER_NAME_ENV
from lambdas.common.k8s import ssl_context_from_ca_data


class SettingsError(ValueError):
    """A required variable is missing or a value is out of range: a deployment bug."""


@dataclass(frozen=True)
class ClusterSettings:
    name: str
    endpoint: str
    ca_data: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ClusterSettings:
        names = (CLUSTER_NAME_ENV, CLUSTER_ENDPOINT_ENV, CLUSTER_CA_DATA_ENV)
        missing = [name for name in names if not env.get(name, "").strip()]
        if missing:
            raise SettingsError(f"missing environment variables: {', '.join(missing)}")
        endpoint = env[CLUSTER_ENDPOINT_ENV].strip()
        if not endpoint.startswith("https://"):
            raise SettingsError(f"{CLUSTER_ENDPOINT_ENV} must start with https://, got {endpoint!r}")
        ca_data = env[CLUSTER_CA_DATA_ENV].strip()
        try:
            # Parse it now, so a bad value is a configuration error and not a TLS failure later.
            ssl_context_from_ca_data(ca_data)
        except ValueError as exc:
            raise SettingsError(
                f"{exc}; got {ca_data[:24]!r}{'...' if len(ca_data) > 24 else ''}, expected the cluster's "
                "certificateAuthority.data as EKS returns it (base64 of the PEM CA certificate)"
            ) from None
        return cls(env[CLUSTER_NAME_ENV].strip(), endpoint, ca_data)


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def env_float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def env_choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def env_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A JSON list of strings, or a comma-separated list; empty or unset gives ()."""
    raw = env.get(name, "").strip()
    if not raw:
        return ()
    if raw.startswith("["):
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise SettingsError(f"{name} is not valid JSON: {raw!r}") from None
        if not isinstance(parsed, list) or not all(isinstance(i, str) and i for i in parsed):
            raise SettingsError(f"{name} must be a JSON list of non-empty strings")
        items = [item.strip() for item in parsed]
    else:
        items = [item.strip() for item in raw.split(",") if item.strip()]
    # Keep the order (it is the processing order) and drop duplicates.
    return tuple(dict.fromkeys(items))
