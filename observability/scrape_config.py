"""The AMP managed scraper's Prometheus configuration: vLLM pods, DCGM, kube-state-metrics, nodes."""

from __future__ import annotations

import base64
from typing import Any

import yaml

from contract.kubernetes import (
    APP_NAME_LABEL,
    MODEL_ID_LABEL,
    MODEL_VERSION_LABEL,
    MODELS_NAMESPACE,
    NODE_MONITORING_NAMESPACE,
    OBSERVABILITY_NAMESPACE,
    VLLM_APP_NAME,
    VLLM_PORT_NAME,
)
from contract.telemetry import VLLM_METRICS_PATH, VLLM_SCRAPE_JOB, prom_label

GPU_MONITORING_NAMESPACE = "gpu-monitoring"
DCGM_EXPORTER_APP = "dcgm-exporter"
DCGM_EXPORTER_PORT_NAME = "metrics"
KUBE_STATE_METRICS_APP = "kube-state-metrics"
KUBE_STATE_METRICS_PORT_NAME = "http"
NODE_EXPORTER_APP = "prometheus-node-exporter"
NODE_EXPORTER_PORT_NAME = "metrics"

Job = dict[str, Any]

# Facts from the AMP user guide, "Using an AWS managed collector" (Scraper limitations and
# Scraper configuration); pinned in tests/unit/contracts/test_amp_scraper_contract.py.
AMP_MIN_SCRAPE_INTERVAL_SECONDS = 30
"""The managed scraper refuses a configuration with a scrape interval below this."""
AMP_SERVICE_ACCOUNT_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path
"""The only credentials file a managed scraper's ``authorization`` section may name (type Bearer)."""


def _pod_label(kubernetes_label: str) -> str:
    return f"__meta_kubernetes_pod_label_{prom_label(kubernetes_label)}"


def _keep_pods(*, app: str, port_name: str) -> list[dict[str, Any]]:
    """Pod discovery narrowed to one app's named port (one target per pod, not per container port)."""
    return [
        {"source_labels": [_pod_label(APP_NAME_LABEL)], "regex": app, "action": "keep"},
        {
            "source_labels": ["__meta_kubernetes_pod_container_port_name"],
            "regex": port_name,
            "action": "keep",
        },
        {"source_labels": ["__meta_kubernetes_pod_phase"], "regex": "Running", "action": "keep"},
    ]


def _copy(source: str, target: str) -> dict[str, Any]:
    return {"source_labels": [source], "target_label": target, "action": "replace"}


def _pod_job(name: str, *, namespace: str, app: str, port_name: str) -> Job:
    return {
        "job_name": name,
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [namespace]}}],
        "relabel_configs": _keep_pods(app=app, port_name=port_name),
    }


def vllm_job() -> Job:
    """vLLM replicas; pod labels become ``model_id``/``model_version`` (the serving contract)."""
    job = _pod_job(VLLM_SCRAPE_JOB, namespace=MODELS_NAMESPACE, app=VLLM_APP_NAME, port_name=VLLM_PORT_NAME)
    job["metrics_path"] = VLLM_METRICS_PATH
    job["relabel_configs"] += [
        _copy(_pod_label(MODEL_ID_LABEL), "model_id"),
        _copy(_pod_label(MODEL_VERSION_LABEL), "model_version"),
        _copy("__meta_kubernetes_namespace", "namespace"),
        _copy("__meta_kubernetes_pod_name", "pod"),
        _copy("__meta_kubernetes_pod_node_name", "node"),
    ]
    return job


GUARDRAIL_FILTER_PORT_NAME = "filter"  # k8s_charts/filter_sidecar.py FILTER_PORT_NAME
GUARDRAIL_FILTER_METRICS_PATH = "/filter/metrics"  # filter_proxy.server.METRICS_PATH


def guardrail_filter_job() -> Job:
    """The filtering proxy sidecars (models with filtering): blocks and guardrail errors per model."""
    job = vllm_job()
    job["job_name"] = "guardrail-filter"
    job["metrics_path"] = GUARDRAIL_FILTER_METRICS_PATH
    job["relabel_configs"] = _keep_pods(app=VLLM_APP_NAME, port_name=GUARDRAIL_FILTER_PORT_NAME) + [
        rule for rule in job["relabel_configs"] if rule["action"] == "replace"
    ]
    return job


GATEWAY_APP = "envoy"  # Envoy Gateway labels its proxy pods app.kubernetes.io/name=envoy
GATEWAY_METRICS_PORT_NAME = "metrics"  # Envoy Gateway proxy container port 19001 (EnvoyStatsPort)
GATEWAY_METRICS_PATH = "/stats/prometheus"  # Envoy Gateway bootstrap.yaml.tpl


def gateway_job() -> Job:
    """The Envoy AI Gateway data plane of `model` routing (k8s_charts/model_gateway.py); finds no pod
    in stages without it."""
    job = _pod_job(
        "model-gateway", namespace=MODELS_NAMESPACE, app=GATEWAY_APP, port_name=GATEWAY_METRICS_PORT_NAME
    )
    job["metrics_path"] = GATEWAY_METRICS_PATH
    job["relabel_configs"] += [
        _copy("__meta_kubernetes_namespace", "namespace"),
        _copy("__meta_kubernetes_pod_name", "pod"),
    ]
    return job


def dcgm_job() -> Job:
    """DCGM exporter (one pod per GPU node); ``node`` says which node's GPUs a series describes.

    The exporter labels each series with the namespace/pod of the GPU's consumer, so the
    target's own namespace and pod are not copied (honor_labels keeps the exporter's).
    """
    job = _pod_job(
        "dcgm-exporter",
        namespace=GPU_MONITORING_NAMESPACE,
        app=DCGM_EXPORTER_APP,
        port_name=DCGM_EXPORTER_PORT_NAME,
    )
    job["honor_labels"] = True
    job["relabel_configs"].append(_copy("__meta_kubernetes_pod_node_name", "node"))
    return job


def kube_state_metrics_job() -> Job:
    """kube-state-metrics; honor_labels so the objects' namespace/pod are not the exporter's own."""
    job = _pod_job(
        "kube-state-metrics",
        namespace=OBSERVABILITY_NAMESPACE,
        app=KUBE_STATE_METRICS_APP,
        port_name=KUBE_STATE_METRICS_PORT_NAME,
    )
    job["honor_labels"] = True
    return job


def node_exporter_job() -> Job:
    job = _pod_job(
        "node-exporter",
        namespace=NODE_MONITORING_NAMESPACE,
        app=NODE_EXPORTER_APP,
        port_name=NODE_EXPORTER_PORT_NAME,
    )
    job["relabel_configs"].append(_copy("__meta_kubernetes_pod_node_name", "node"))
    return job


def cadvisor_job() -> Job:
    """Container CPU/memory from each kubelet, through the API server proxy (needs nodes/proxy).

    The API server wants the scraper's bearer token; AMP's guide shows this authorization block for
    jobs that go through the proxy.
    """
    return {
        "job_name": "kubelet-cadvisor",
        "scheme": "https",
        "authorization": {"type": "Bearer", "credentials_file": AMP_SERVICE_ACCOUNT_TOKEN_FILE},
        "kubernetes_sd_configs": [{"role": "node"}],
        "relabel_configs": [
            {"target_label": "__address__", "replacement": "kubernetes.default.svc:443"},
            {
                "source_labels": ["__meta_kubernetes_node_name"],
                "regex": "(.+)",
                "target_label": "__metrics_path__",
                "replacement": "/api/v1/nodes/$1/proxy/metrics/cadvisor",
            },
            _copy("__meta_kubernetes_node_name", "node"),
        ],
    }


def scrape_config(*, scrape_interval_seconds: int) -> dict[str, Any]:
    if scrape_interval_seconds < AMP_MIN_SCRAPE_INTERVAL_SECONDS:
        raise ValueError(
            f"scrape interval {scrape_interval_seconds}s is below the AMP managed scraper's minimum of "
            f"{AMP_MIN_SCRAPE_INTERVAL_SECONDS}s"
        )
    interval = f"{scrape_interval_seconds}s"
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": f"{min(scrape_interval_seconds, 10)}s"},
        "scrape_configs": [
            vllm_job(),
            guardrail_filter_job(),
            gateway_job(),
            dcgm_job(),
            kube_state_metrics_job(),
            node_exporter_job(),
            cadvisor_job(),
        ],
    }


def scrape_config_blob(*, scrape_interval_seconds: int) -> str:
    """Base64 of the YAML, which is how AWS::APS::Scraper takes its configuration."""
    document = yaml.safe_dump(scrape_config(scrape_interval_seconds=scrape_interval_seconds), sort_keys=False)
    return base64.b64encode(document.encode()).decode()
