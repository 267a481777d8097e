"""The serving namespace's ConfigMaps and Secret: names and keys that a stack writes and a chart,
the filter proxy or a GitOps tool reads."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

# The model API key: synced from Secrets Manager by the External Secrets Operator into this
# Secret, and read by vLLM from this env var (vllm/envs.py). Not `--api-key`: an argument is visible
# in the process list, and vLLM before v0.33 logged it with its non-default arguments.
API_KEY_SECRET: Final = "vllm-api-key"  # noqa: S105 - a name, not a value
API_KEY_SECRET_FIELD: Final = "api-key"  # noqa: S105 - a key name
API_KEY_ENV: Final = "VLLM_API_KEY"
API_KEY_SECRET_STORE: Final = "aws-secrets-manager"  # noqa: S105 - a name

# The guardrail of a model: the serving stack publishes its id and version in a ConfigMap; the
# filter sidecar reads both keys into environment variables of the same names (filter_proxy/server.py).
GUARDRAIL_ID_KEY: Final = "GUARDRAIL_ID"
GUARDRAIL_VERSION_KEY: Final = "GUARDRAIL_VERSION"


def guardrail_config_map_name(model_id: str) -> str:
    """The ConfigMap (namespace models) in which the serving stack publishes the model's guardrail."""
    return f"{model_id}-guardrail"


STAGE_VALUES_CONFIG_MAP: Final = "serving-stage-values"
"""Where the serving stack writes the stage's values for Flux post-build substitution."""


@dataclass(frozen=True)
class StageValues:
    """Values the charts need that exist only once the stage is deployed.

    The serving stack passes CloudFormation tokens; the GitOps export passes `${VAR}` placeholders
    (Flux post-build substitution syntax) that the `serving-stage-values` ConfigMap fills in.
    """

    model_bucket_name: str
    prometheus_query_url: str
    access_logs_bucket_name: str
    web_acl_arn: str
    region: str
    api_key_secret_arn: str
    docker_hub_mirror: str = ""
    """Image prefix of the stage's Docker Hub pull-through cache (k8s_charts/images.py); empty: none."""


STAGE_VALUE_KEYS: Final[dict[str, str]] = {
    "model_bucket_name": "MODEL_BUCKET_NAME",
    "prometheus_query_url": "PROMETHEUS_QUERY_URL",
    "access_logs_bucket_name": "ACCESS_LOGS_BUCKET_NAME",
    "web_acl_arn": "WEB_ACL_ARN",
    "region": "AWS_REGION",
    "api_key_secret_arn": "API_KEY_SECRET_ARN",
    "docker_hub_mirror": "DOCKER_HUB_MIRROR",
}
"""``StageValues`` field -> key of the `serving-stage-values` ConfigMap (and name of its placeholder)."""


def stage_values_data(values: StageValues) -> dict[str, str]:
    """The `serving-stage-values` ConfigMap's data: one key per ``StageValues`` field."""
    return {STAGE_VALUE_KEYS[field.name]: getattr(values, field.name) for field in fields(values)}


PLACEHOLDERS: Final = StageValues(**{name: f"${{{key}}}" for name, key in STAGE_VALUE_KEYS.items()})
"""The GitOps export's values: a `${KEY}` placeholder per key of the `serving-stage-values` ConfigMap."""
