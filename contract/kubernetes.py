"""Kubernetes names shared by the cluster, the charts, the add-ons, the alert rules and the Lambdas."""

from __future__ import annotations

from typing import Final

# Namespaces --------------------------------------------------------------------------------------

MODELS_NAMESPACE: Final = "models"
"""The model servers (vLLM Deployments, their Services, ScaledObjects, ConfigMaps and Secrets)."""
OBSERVABILITY_NAMESPACE: Final = "observability"
# Privileged DaemonSets (host network, host paths) each get a namespace of their own, so the
# namespaces of ordinary workloads can enforce a stricter Pod Security level.
NODE_MONITORING_NAMESPACE: Final = "node-monitoring"
LOGGING_NAMESPACE: Final = "logging"

# Labels of the model pods ------------------------------------------------------------------------

APP_NAME_LABEL: Final = "app.kubernetes.io/name"
APP_INSTANCE_LABEL: Final = "app.kubernetes.io/instance"
VLLM_APP_NAME: Final = "vllm"
"""``app.kubernetes.io/name`` of every model server pod."""
VLLM_PORT_NAME: Final = "http"
"""The name of the vLLM container's port and of its Service's port; the scraper keeps pods by it."""
MODEL_ID_LABEL: Final = "llm-inference/model-id"
MODEL_VERSION_LABEL: Final = "llm-inference/model-version"
METRICS_SCRAPER_NAMESPACE_LABEL: Final = "llm-inference/metrics-scraper"
"""Namespaces running an in-cluster metrics collector carry this label; the AMP managed scraper
reaches pods from the edge subnets instead (config/subnets.py), which the policy admits by CIDR."""

# Nodes -------------------------------------------------------------------------------------------

NODE_GROUP_LABEL: Final = "llm-inference/node-group"
"""Every managed node group labels its nodes with its config name."""
SYSTEM_NODE_GROUP: Final = "system"
"""The on-demand system group's label value: controllers run there, never on (Spot) GPU nodes."""
GPU_MODEL_LABEL: Final = "llm-inference/gpu-model"
"""Only GPU node groups carry it (its value is the config's GPU model)."""
GPU_COUNT_LABEL: Final = "llm-inference/gpu-count"
CAPACITY_TYPE_LABEL: Final = "llm-inference/capacity-type"
GPU_RESOURCE: Final = "nvidia.com/gpu"
"""The NVIDIA device plugin's extended resource name (whole GPUs or time-sliced replicas)."""
GPU_TAINT_KEY: Final = GPU_RESOURCE
"""Every GPU node group taints its nodes ``nvidia.com/gpu=true:NoSchedule``."""
GPU_TAINT_VALUE: Final = "true"
SPOT_INTERRUPTION_TAINT_KEY: Final = "llm-inference.aws/spot-interruption"
"""The taint the Spot interruption Lambda puts on a node with an interruption warning."""
REBALANCE_TAINT_KEY: Final = "llm-inference.aws/rebalance-recommendation"
"""The taint it puts on a node with a rebalance recommendation."""

# KEDA --------------------------------------------------------------------------------------------

KEDA_AUTHENTICATION: Final = "keda-aws-amp"
"""The ClusterTriggerAuthentication (SigV4 to AMP) every model version's ScaledObject uses."""
KEDA_HPA_PREFIX: Final = "keda-hpa-"
"""KEDA names the HPA it manages ``keda-hpa-<ScaledObject name>`` (KEDA's HPA naming)."""


def instance_name(model_id: str, version: str) -> str:
    """Name of a model version's Deployment, Service, ServiceAccount and ScaledObject."""
    return f"{model_id}-{version}"


def pods_service_name(model_id: str, version: str) -> str:
    """A model version's headless Service (`model` routing): its DNS name resolves to the ready pods."""
    return f"{instance_name(model_id, version)}-pods"


def keda_hpa_name(model_id: str, version: str) -> str:
    """The HPA KEDA creates for a model version's ScaledObject."""
    return f"{KEDA_HPA_PREFIX}{instance_name(model_id, version)}"


def selector_labels(model_id: str, version: str) -> dict[str, str]:
    """The immutable subset used in Deployment selectors, PDBs and Services."""
    return {APP_NAME_LABEL: VLLM_APP_NAME, APP_INSTANCE_LABEL: instance_name(model_id, version)}


def pod_labels(model_id: str, version: str) -> dict[str, str]:
    """Labels of a model version's pods: the selector plus model id and version."""
    return {**selector_labels(model_id, version), MODEL_ID_LABEL: model_id, MODEL_VERSION_LABEL: version}
