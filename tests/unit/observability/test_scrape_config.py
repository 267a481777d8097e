"""The scraper's jobs find the right pods and turn pod labels into the contract's metric labels."""

from __future__ import annotations

import base64
import re
from typing import Any

import yaml

from observability.scrape_config import scrape_config, scrape_config_blob

VLLM_POD = {
    "__address__": "10.10.32.7:8000",
    "__meta_kubernetes_namespace": "models",
    "__meta_kubernetes_pod_name": "llama-3-1-8b-v1-7f9c-abcde",
    "__meta_kubernetes_pod_node_name": "ip-10-10-32-1.ec2.internal",
    "__meta_kubernetes_pod_phase": "Running",
    "__meta_kubernetes_pod_container_port_name": "http",
    "__meta_kubernetes_pod_label_app_kubernetes_io_name": "vllm",
    "__meta_kubernetes_pod_label_app_kubernetes_io_instance": "llama-3-1-8b-v1",
    "__meta_kubernetes_pod_label_llm_inference_model_id": "llama-3-1-8b",
    "__meta_kubernetes_pod_label_llm_inference_model_version": "v1",
}


def relabel(labels: dict[str, str], configs: list[dict[str, Any]]) -> dict[str, str] | None:
    """Prometheus relabelling for the actions these jobs use (keep, replace); None when dropped."""
    labels = dict(labels)
    for config in configs:
        value = config.get("separator", ";").join(
            labels.get(name, "") for name in config.get("source_labels", [])
        )
        pattern = re.compile(f"^(?:{config.get('regex', '(.*)')})$")
        action = config.get("action", "replace")
        if action == "keep":
            if not pattern.match(value):
                return None
        elif action == "replace":
            match = pattern.match(value)
            if match:
                replacement = re.sub(r"\$(\d+)", r"\\\1", config.get("replacement", "$1"))
                labels[config["target_label"]] = match.expand(replacement)
        else:
            raise AssertionError(f"untested relabel action {action}")
    return labels


def _job(name: str) -> dict[str, Any]:
    jobs: list[dict[str, Any]] = scrape_config(scrape_interval_seconds=30)["scrape_configs"]
    return next(job for job in jobs if job["job_name"] == name)


def test_the_scraper_has_a_job_per_source() -> None:
    names = {job["job_name"] for job in scrape_config(scrape_interval_seconds=30)["scrape_configs"]}
    assert names == {
        "vllm",
        "guardrail-filter",
        "model-gateway",
        "dcgm-exporter",
        "kube-state-metrics",
        "node-exporter",
        "kubelet-cadvisor",
    }


def test_the_filter_job_scrapes_the_sidecar_port_with_model_labels() -> None:
    job = _job("guardrail-filter")
    assert job["metrics_path"] == "/filter/metrics"
    sidecar = {**VLLM_POD, "__meta_kubernetes_pod_container_port_name": "filter"}
    labels = relabel(sidecar, job["relabel_configs"])
    assert labels is not None
    assert (labels["model_id"], labels["model_version"], labels["namespace"]) == (
        "llama-3-1-8b",
        "v1",
        "models",
    )
    # vLLM's own port is the vllm job's, not this one's.
    assert relabel(VLLM_POD, job["relabel_configs"]) is None


def test_vllm_pod_labels_become_model_labels() -> None:
    job = _job("vllm")
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["models"]}}]
    assert job["metrics_path"] == "/metrics"
    labels = relabel(VLLM_POD, job["relabel_configs"])
    assert labels is not None
    assert labels["model_id"] == "llama-3-1-8b"
    assert labels["model_version"] == "v1"
    assert labels["namespace"] == "models"
    assert labels["pod"] == "llama-3-1-8b-v1-7f9c-abcde"
    assert labels["node"] == "ip-10-10-32-1.ec2.internal"


def test_vllm_job_drops_other_apps_and_other_ports() -> None:
    job = _job("vllm")
    other_app = {**VLLM_POD, "__meta_kubernetes_pod_label_app_kubernetes_io_name": "router"}
    other_port = {**VLLM_POD, "__meta_kubernetes_pod_container_port_name": "grpc"}
    pending = {**VLLM_POD, "__meta_kubernetes_pod_phase": "Pending"}
    for target in (other_app, other_port, pending):
        assert relabel(target, job["relabel_configs"]) is None


def test_exporters_keep_their_own_namespace_and_pod_labels() -> None:
    """DCGM and kube-state-metrics describe other pods; their labels must not be overwritten."""
    assert _job("dcgm-exporter")["honor_labels"] is True
    assert _job("kube-state-metrics")["honor_labels"] is True
    dcgm_target = {
        "__meta_kubernetes_pod_label_app_kubernetes_io_name": "dcgm-exporter",
        "__meta_kubernetes_pod_container_port_name": "metrics",
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_node_name": "gpu-node-1",
    }
    labels = relabel(dcgm_target, _job("dcgm-exporter")["relabel_configs"])
    assert labels is not None
    assert labels["node"] == "gpu-node-1"
    assert "pod" not in labels
    assert "namespace" not in labels


def test_cadvisor_goes_through_the_api_server_proxy() -> None:
    labels = relabel({"__meta_kubernetes_node_name": "n1"}, _job("kubelet-cadvisor")["relabel_configs"])
    assert labels is not None
    assert labels["__address__"] == "kubernetes.default.svc:443"
    assert labels["__metrics_path__"] == "/api/v1/nodes/n1/proxy/metrics/cadvisor"


def test_blob_is_the_base64_yaml_with_the_configured_interval() -> None:
    document = yaml.safe_load(base64.b64decode(scrape_config_blob(scrape_interval_seconds=45)))
    assert document == scrape_config(scrape_interval_seconds=45)
    assert document["global"]["scrape_interval"] == "45s"


def test_the_gateway_job_scrapes_envoys_stats_port_of_the_proxy_pods() -> None:
    job = _job("model-gateway")
    assert job["metrics_path"] == "/stats/prometheus"
    envoy = {
        **VLLM_POD,
        "__meta_kubernetes_pod_name": "model-gateway-5d8f-abcde",
        "__meta_kubernetes_pod_label_app_kubernetes_io_name": "envoy",
        "__meta_kubernetes_pod_container_port_name": "metrics",
    }
    labels = relabel(envoy, job["relabel_configs"])
    assert labels is not None
    assert labels["pod"] == "model-gateway-5d8f-abcde"
    assert relabel(VLLM_POD, job["relabel_configs"]) is None
