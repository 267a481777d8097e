"""Names, labels and shared values of the serving manifests (the contract other teams rely on)."""

from __future__ import annotations

from dataclasses import dataclass

MODELS_NAMESPACE = "models"
APP_NAME = "vllm"
NODE_GROUP_LABEL = "llm-inference/node-group"
MODEL_ID_LABEL = "llm-inference/model-id"
MODEL_VERSION_LABEL = "llm-inference/model-version"
# Namespaces running an in-cluster metrics collector carry this label; the AMP managed scraper
# reaches pods from the VPC's subnets instead and is covered by the VPC CIDR rule.
METRICS_SCRAPER_NAMESPACE_LABEL = "llm-inference/metrics-scraper"
GPU_RESOURCE = "nvidia.com/gpu"
KEDA_AUTHENTICATION = "keda-aws-amp"

# The shutdown budget of a model version (preStop, vLLM's drain, grace period, ALB
# deregistration delay) is derived from its max_request_seconds: k8s_charts/shutdown.py.

# Streamed completions of long prompts can stay silent for minutes before the first token.
ALB_IDLE_TIMEOUT_SECONDS = 300
# The target must never close a kept-alive connection before the ALB does, or the ALB sends a
# request into a closing socket and answers 502 (ALB docs: target keep-alive > idle timeout).
SERVER_KEEP_ALIVE_SECONDS = ALB_IDLE_TIMEOUT_SECONDS + 10


def instance_name(model_id: str, version: str) -> str:
    """Name of a model version's Deployment, Service, ServiceAccount and ScaledObject."""
    return f"{model_id}-{version}"


def pod_labels(model_id: str, version: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": instance_name(model_id, version),
        MODEL_ID_LABEL: model_id,
        MODEL_VERSION_LABEL: version,
    }


def selector_labels(model_id: str, version: str) -> dict[str, str]:
    """The immutable subset used in Deployment selectors, PDBs and Services."""
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": instance_name(model_id, version),
    }


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
    docker_hub_mirror: str = ""
    """Image prefix of the stage's Docker Hub pull-through cache (k8s_charts/images.py); empty: none."""


PLACEHOLDERS = StageValues(
    model_bucket_name="${MODEL_BUCKET_NAME}",
    prometheus_query_url="${PROMETHEUS_QUERY_URL}",
    access_logs_bucket_name="${ACCESS_LOGS_BUCKET_NAME}",
    web_acl_arn="${WEB_ACL_ARN}",
    region="${AWS_REGION}",
    docker_hub_mirror="${DOCKER_HUB_MIRROR}",
)
"""The GitOps export's values; keys of the `serving-stage-values` ConfigMap."""
