"""Names shared with the serving charts and the Lambdas; changing one is a cross-team contract change."""

from __future__ import annotations

MODELS_NAMESPACE = "models"
APP_NAME_LABEL = "app.kubernetes.io/name"
VLLM_APP_NAME = "vllm"
MODEL_ID_POD_LABEL = "llm-inference/model-id"
MODEL_VERSION_POD_LABEL = "llm-inference/model-version"
VLLM_METRICS_PORT_NAME = "http"
VLLM_METRICS_PATH = "/metrics"

OBSERVABILITY_NAMESPACE = "observability"
# Privileged DaemonSets (host network, host paths) each get a namespace of their own, so the
# namespaces of ordinary workloads can enforce a stricter Pod Security level.
NODE_MONITORING_NAMESPACE = "node-monitoring"
LOGGING_NAMESPACE = "logging"
OTEL_COLLECTOR_NAME = "otel-collector"
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
OTLP_TRACES_ENDPOINT = (
    f"http://{OTEL_COLLECTOR_NAME}.{OBSERVABILITY_NAMESPACE}.svc.cluster.local:{OTLP_GRPC_PORT}"
)
"""What serving passes to vLLM's ``--otlp-traces-endpoint`` (OTLP over gRPC, vLLM's default)."""

SPOT_INTERRUPTION_TAINT_KEY = "llm-inference.aws/spot-interruption"
"""The taint the Spot interruption Lambda puts on a node (lambdas/spot_interruption/node.py)."""

KEDA_CLUSTER_TRIGGER_AUTHENTICATION = "keda-aws-amp"


def prom_label(kubernetes_label: str) -> str:
    """How Prometheus and kube-state-metrics spell a Kubernetes label as a metric label name."""
    return "".join(char if char.isalnum() else "_" for char in kubernetes_label)
