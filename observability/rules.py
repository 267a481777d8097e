"""Recording and alerting rules for Managed Prometheus, generated from the stage configuration.

Recording rules precompute the per-model golden signals the dashboard and alerts read; alerts
carry ``severity`` (routes in Alertmanager), ``summary`` and ``runbook_url`` (a section of
docs/observability.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config.platform import ObservabilityConfig
from config.serving import ModelConfig
from observability.contract import (
    MODEL_ID_POD_LABEL,
    MODEL_VERSION_POD_LABEL,
    MODELS_NAMESPACE,
    SPOT_INTERRUPTION_TAINT_KEY,
    prom_label,
)

Rule = dict[str, Any]
BY_MODEL = "namespace, model_id, model_version"
MODELS = f'namespace="{MODELS_NAMESPACE}"'
API_CALLS = f'{MODELS}, handler=~"/v1/.*"'
GPU_POD_LABELS = {
    "model_id": f"label_{prom_label(MODEL_ID_POD_LABEL)}",
    "model_version": f"label_{prom_label(MODEL_VERSION_POD_LABEL)}",
}


def _record(name: str, expr: str) -> Rule:
    return {"record": name, "expr": expr}


def recording_rules() -> dict[str, Any]:
    """Per model version (``namespace``, ``model_id``, ``model_version``) and per GPU node."""
    by_model = [
        _record(
            "model:vllm_http_requests:rate5m",
            f"sum by ({BY_MODEL}) (rate(http_requests_total{{{API_CALLS}}}[5m]))",
        ),
        _record(
            "model:vllm_http_errors:ratio_rate5m",
            f'sum by ({BY_MODEL}) (rate(http_requests_total{{{API_CALLS}, status="5xx"}}[5m]))\n'
            f"/ on ({BY_MODEL}) model:vllm_http_requests:rate5m > 0",
        ),
        _record(
            "model:vllm_request_success:rate5m",
            f"sum by ({BY_MODEL}) (rate(vllm:request_success_total{{{MODELS}}}[5m]))",
        ),
        *(
            _record(
                f"model:vllm_time_to_first_token_seconds:p{int(q * 100)}_5m",
                f"histogram_quantile({q}, sum by (le, {BY_MODEL}) "
                f"(rate(vllm:time_to_first_token_seconds_bucket{{{MODELS}}}[5m])))",
            )
            for q in (0.5, 0.95)
        ),
        _record(
            "model:vllm_inter_token_latency_seconds:p95_5m",
            f"histogram_quantile(0.95, sum by (le, {BY_MODEL}) "
            f"(rate(vllm:inter_token_latency_seconds_bucket{{{MODELS}}}[5m])))",
        ),
        _record(
            "model:vllm_num_requests_waiting:sum",
            f"sum by ({BY_MODEL}) (vllm:num_requests_waiting{{{MODELS}}})",
        ),
        _record(
            "model:vllm_num_requests_waiting:avg_per_replica",
            f"avg by ({BY_MODEL}) (vllm:num_requests_waiting{{{MODELS}}})",
        ),
        _record(
            "model:vllm_num_requests_running:sum",
            f"sum by ({BY_MODEL}) (vllm:num_requests_running{{{MODELS}}})",
        ),
        _record(
            "model:vllm_generation_tokens:rate5m",
            f"sum by ({BY_MODEL}) (rate(vllm:generation_tokens_total{{{MODELS}}}[5m]))",
        ),
        _record(
            "model:vllm_prompt_tokens:rate5m",
            f"sum by ({BY_MODEL}) (rate(vllm:prompt_tokens_total{{{MODELS}}}[5m]))",
        ),
        _record(
            "model:vllm_kv_cache_usage_perc:avg",
            f"avg by ({BY_MODEL}) (vllm:kv_cache_usage_perc{{{MODELS}}})",
        ),
        _record(
            "model:vllm_kv_cache_usage_perc:max",
            f"max by ({BY_MODEL}) (vllm:kv_cache_usage_perc{{{MODELS}}})",
        ),
        _record(
            "model:kube_pod_ready:count",
            # kube-state-metrics spells pod labels label_<name>; rename them to the contract's names.
            _relabel_pod_labels(
                f"sum by (namespace, {', '.join(GPU_POD_LABELS.values())}) ("
                f'kube_pod_status_ready{{{MODELS}, condition="true"}}'
                f" * on (namespace, pod) group_left ({', '.join(GPU_POD_LABELS.values())}) "
                f'kube_pod_labels{{{MODELS}, label_app_kubernetes_io_name="vllm"}})'
            ),
        ),
        _record(
            "model:kube_pod:count",
            _relabel_pod_labels(
                f"count by (namespace, {', '.join(GPU_POD_LABELS.values())}) ("
                f'kube_pod_labels{{{MODELS}, label_app_kubernetes_io_name="vllm"}})'
            ),
        ),
    ]
    by_node = [
        _record("node:dcgm_gpu_utilization:avg", "avg by (node) (DCGM_FI_DEV_GPU_UTIL) / 100"),
        _record(
            "node:dcgm_framebuffer_used:ratio",
            "sum by (node) (DCGM_FI_DEV_FB_USED) / sum by (node) (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)",
        ),
    ]
    return {
        "groups": [
            {"name": "llm-inference-model-signals", "interval": "30s", "rules": by_model},
            {"name": "llm-inference-gpu-nodes", "interval": "30s", "rules": by_node},
        ]
    }


def _relabel_pod_labels(expr: str) -> str:
    for target, source in GPU_POD_LABELS.items():
        expr = f'label_replace({expr}, "{target}", "$1", "{source}", "(.*)")'
    return expr


@dataclass(frozen=True)
class _Alert:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    extra_labels: dict[str, str] | None = None

    def render(self, runbook_base_url: str) -> Rule:
        labels = {"severity": self.severity, **(self.extra_labels or {})}
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": labels,
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": f"{runbook_base_url}#{self.name.lower()}",
            },
        }


def alerting_rules(
    *, models: list[ModelConfig], observability: ObservabilityConfig, runbook_base_url: str
) -> dict[str, Any]:
    """One group for model serving, one for GPU nodes and capacity."""
    serving = [alert.render(runbook_base_url) for alert in _serving_alerts(models, observability)]
    nodes = [alert.render(runbook_base_url) for alert in _node_alerts(observability)]
    return {
        "groups": [
            {"name": "llm-inference-serving", "rules": serving},
            {"name": "llm-inference-gpu-capacity", "rules": nodes},
        ]
    }


def _serving_alerts(models: list[ModelConfig], observability: ObservabilityConfig) -> list[_Alert]:
    alerts = []
    for model in models:
        selector = f'model_id="{model.id}"'
        queue_limit = model.autoscaling.target_queue_depth * observability.alert_queue_depth_factor
        alerts += [
            _Alert(
                name="HighQueueDepth",
                expr=f"model:vllm_num_requests_waiting:avg_per_replica{{{selector}}} > {queue_limit:g}",
                for_="10m",
                severity="warning",
                summary=f"{model.id} {{{{ $labels.model_version }}}}: {{{{ $value }}}} requests waiting "
                "per replica",
                description=f"Above {observability.alert_queue_depth_factor:g} x the autoscaling target "
                f"({model.autoscaling.target_queue_depth:g}) for 10 minutes: scaling is not keeping up "
                "(max replicas, no GPU capacity, or the metric path is broken).",
                extra_labels={"model_id": model.id},
            ),
            _Alert(
                name="TimeToFirstTokenAboveSLO",
                expr=f"model:vllm_time_to_first_token_seconds:p95_5m{{{selector}}} > "
                f"{model.slo.ttft_p95_seconds:g}",
                for_="10m",
                severity="critical",
                summary=f"{model.id} {{{{ $labels.model_version }}}}: TTFT p95 {{{{ $value }}}}s over the "
                f"{model.slo.ttft_p95_seconds:g}s SLO",
                description="Time to first token p95 over 5 minutes has been above the model's SLO "
                "(models[].slo.ttft_p95_seconds) for 10 minutes.",
                extra_labels={"model_id": model.id},
            ),
        ]
    alerts += [
        _Alert(
            name="HighErrorRate",
            expr=f"model:vllm_http_errors:ratio_rate5m > {observability.alert_error_rate_ratio:g}",
            for_="5m",
            severity="critical",
            summary="{{ $labels.model_id }} {{ $labels.model_version }}: {{ $value | humanizePercentage }} "
            "of /v1 requests fail with 5xx",
            description="Share of /v1 calls answered with a 5xx above "
            f"{observability.alert_error_rate_ratio:g} for 5 minutes.",
        ),
        _Alert(
            name="NoReadyReplicas",
            expr="model:kube_pod:count > 0 unless on (namespace, model_id, model_version) "
            "model:kube_pod_ready:count > 0",
            for_="10m",
            severity="critical",
            summary="{{ $labels.model_id }} {{ $labels.model_version }} has pods but none is ready",
            description="Every replica of this model version has been unready for 10 minutes; "
            "requests routed to it fail.",
        ),
        _Alert(
            name="KVCacheNearFull",
            expr=f"model:vllm_kv_cache_usage_perc:max > {observability.alert_kv_cache_usage_ratio:g}",
            for_="15m",
            severity="warning",
            summary="{{ $labels.model_id }} {{ $labels.model_version }}: KV cache {{ $value | "
            "humanizePercentage }} used",
            description="A replica's KV cache has been nearly full for 15 minutes; vLLM preempts "
            "requests and latency rises.",
        ),
    ]
    return alerts


def _node_alerts(observability: ObservabilityConfig) -> list[_Alert]:
    gpu_requests = 'kube_pod_container_resource_requests{resource="nvidia_com_gpu"}'
    return [
        _Alert(
            name="GpuXidErrors",
            expr="max by (node, gpu) (DCGM_FI_DEV_XID_ERRORS) > 0",
            for_="0m",
            severity="critical",
            summary="GPU {{ $labels.gpu }} on {{ $labels.node }} reports XID error {{ $value }}",
            description="The driver reported an XID error; most codes (48, 63, 64, 74, 79, 94, 95) "
            "mean the GPU needs a reset or the node a replacement.",
        ),
        _Alert(
            name="GpuNodeNotReady",
            expr='kube_node_status_condition{condition="Ready", status="true"} == 0 '
            'and on (node) kube_node_labels{label_llm_inference_gpu_model!=""}',
            for_="5m",
            severity="critical",
            summary="GPU node {{ $labels.node }} is not Ready",
            description="A GPU node has not been Ready for 5 minutes; its replicas are gone or failing.",
        ),
        _Alert(
            name="GpuPodsPending",
            expr='count by (namespace) ((kube_pod_status_phase{phase="Pending"} == 1) '
            f"and on (namespace, pod) ({gpu_requests} > 0)) > 0",
            for_="15m",
            severity="warning",
            summary="{{ $value }} pods requesting GPUs pending in {{ $labels.namespace }}",
            description="Pods asking for GPUs have waited 15 minutes: the Cluster Autoscaler cannot "
            "add a node (max size, Spot capacity, quota) or nothing fits.",
        ),
        _Alert(
            name="SpotInterruptionsHigh",
            expr="count(max_over_time(kube_node_spec_taint"
            f'{{key="{SPOT_INTERRUPTION_TAINT_KEY}"}}[1h])) '
            f"> {observability.alert_spot_interruptions_per_hour}",
            for_="0m",
            severity="warning",
            summary="{{ $value }} Spot interruptions in the last hour",
            description="Nodes that carried the Spot interruption taint within the last hour; "
            "frequent interruptions call for other instance types or more on-demand capacity.",
        ),
    ]
