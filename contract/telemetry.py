"""Telemetry names shared by the functions, the alarms, the scrape config, the rules and the charts."""

from __future__ import annotations

from typing import Final

from contract.kubernetes import GPU_MODEL_LABEL, OBSERVABILITY_NAMESPACE

# Operational functions (Powertools embedded metric format) ----------------------------------------

METRICS_NAMESPACE: Final = "LlmInference"
"""CloudWatch namespace of the functions' metrics; passed to both as ``METRICS_NAMESPACE_ENV``."""
METRICS_NAMESPACE_ENV: Final = "POWERTOOLS_METRICS_NAMESPACE"
SPOT_INTERRUPTION_SERVICE: Final = "spot-interruption"
"""The Spot interruption function's Powertools service (the ``service`` dimension of its metrics)."""
OFFHOURS_SCALER_SERVICE: Final = "offhours-scaler"
"""The off-hours scaler's Powertools service (the ``service`` dimension of its metrics)."""
# Metrics the functions emit and OpsStack alarms on.
REJECTED_EVENTS_METRIC: Final = "RejectedEvents"
"""Both functions: an event rejected as malformed, unexpected or stale."""
MODELS_NOT_READY_METRIC: Final = "ModelsNotReady"
"""Off-hours scaler: model versions not Ready when the booked readiness check ran."""


def pods_metric(outcome: str) -> str:
    """Spot function: pods of a drained node by outcome (``evicted``, ``failed``, ``pending``, ...)."""
    return f"Pods_{outcome}"


# Model servers ------------------------------------------------------------------------------------

VLLM_SCRAPE_JOB: Final = "vllm"
"""The scrape job of the model servers (the ``job`` label of their series)."""
VLLM_METRICS_PATH: Final = "/metrics"

# Traces -------------------------------------------------------------------------------------------

OTEL_COLLECTOR_NAME: Final = "otel-collector"
OTLP_GRPC_PORT: Final = 4317
OTLP_HTTP_PORT: Final = 4318
OTLP_TRACES_ENDPOINT: Final = (
    f"http://{OTEL_COLLECTOR_NAME}.{OBSERVABILITY_NAMESPACE}.svc.cluster.local:{OTLP_GRPC_PORT}"
)
"""What serving passes to vLLM's ``--otlp-traces-endpoint`` (OTLP over gRPC, vLLM's default)."""


def prom_label(kubernetes_label: str) -> str:
    """How Prometheus and kube-state-metrics spell a Kubernetes label as a metric label name."""
    return "".join(char if char.isalnum() else "_" for char in kubernetes_label)


def ksm_label(kubernetes_label: str) -> str:
    """How kube-state-metrics names a Kubernetes label (``kube_pod_labels``, ``kube_node_labels``)."""
    return f"label_{prom_label(kubernetes_label)}"


GPU_NODES: Final = f'kube_node_labels{{{ksm_label(GPU_MODEL_LABEL)}!=""}}'
"""PromQL: the series of every GPU node (only GPU node groups carry the GPU model label)."""
