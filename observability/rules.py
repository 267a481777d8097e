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
from contract.kubernetes import (
    APP_NAME_LABEL,
    MODEL_ID_LABEL,
    MODEL_VERSION_LABEL,
    MODELS_NAMESPACE,
    OBSERVABILITY_NAMESPACE,
    SPOT_INTERRUPTION_TAINT_KEY,
    VLLM_APP_NAME,
    instance_name,
    keda_hpa_name,
)
from contract.telemetry import GPU_NODES, VLLM_SCRAPE_JOB, ksm_label
from observability import slo

Rule = dict[str, Any]
BY_MODEL = "namespace, model_id, model_version"
MODELS = f'namespace="{MODELS_NAMESPACE}"'
API_CALLS = f'{MODELS}, handler=~"/v1/.*"'
VLLM_PODS = f'{ksm_label(APP_NAME_LABEL)}="{VLLM_APP_NAME}"'
GPU_POD_LABELS = {
    "model_id": ksm_label(MODEL_ID_LABEL),
    "model_version": ksm_label(MODEL_VERSION_LABEL),
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
        *(
            _record(
                f"model:vllm_{name}_seconds:p95_5m",
                f"histogram_quantile(0.95, sum by (le, {BY_MODEL}) "
                f"(rate(vllm:{name}_seconds_bucket{{{MODELS}}}[5m])))",
            )
            for name in ("e2e_request_latency", "request_queue_time")
        ),
        _record(
            "model:vllm_preemptions:rate5m",
            f"sum by ({BY_MODEL}) (rate(vllm:num_preemptions_total{{{MODELS}}}[5m]))",
        ),
        _record(
            "model:vllm_aborted_requests:rate5m",
            f"sum by ({BY_MODEL}) "
            f'(rate(vllm:request_success_total{{{MODELS}, finished_reason="abort"}}[5m]))',
        ),
        _record(
            "model:vllm_prefix_cache_hits:ratio_rate5m",
            f"sum by ({BY_MODEL}) (rate(vllm:prefix_cache_hits_total{{{MODELS}}}[5m]))\n"
            f"/ sum by ({BY_MODEL}) (rate(vllm:prefix_cache_queries_total{{{MODELS}}}[5m]))",
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
                f"kube_pod_labels{{{MODELS}, {VLLM_PODS}}})"
            ),
        ),
        _record(
            "model:kube_pod:count",
            _relabel_pod_labels(
                f"count by (namespace, {', '.join(GPU_POD_LABELS.values())}) ("
                f"kube_pod_labels{{{MODELS}, {VLLM_PODS}}})"
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


WATCHDOG = "Watchdog"
"""Always firing while metrics arrive; its silence is the page (docs/observability.md#watchdog)."""
SYSTEM_NAMESPACES = ("kube-system", "keda", OBSERVABILITY_NAMESPACE)
HARDWARE_XIDS = (48, 63, 64, 74, 79, 94, 95)
"""XIDs that mean the GPU needs a reset or the node a replacement (NVIDIA XID catalogue)."""
CLUSTER_AUTOSCALER_MAX_PROVISION_MINUTES = 15
"""constructs_lib/addons/cluster_autoscaler.py MAX_NODE_PROVISION_TIME: a fallback to on-demand
takes up to this long, so pending GPU pods alert only after twice that."""


def alerting_rules(
    *, models: list[ModelConfig], observability: ObservabilityConfig, runbook_base_url: str
) -> dict[str, Any]:
    """The dead-man's switch, SLO burn rates, serving, and GPU capacity, one group each."""
    groups = (
        ("llm-inference-metrics-path", _metrics_path_alerts(models)),
        ("llm-inference-serving", _serving_alerts(models, observability)),
        ("llm-inference-gpu-capacity", _node_alerts(observability)),
    )
    rendered = [
        {"name": name, "rules": [alert.render(runbook_base_url) for alert in alerts]}
        for name, alerts in groups
    ]
    burn = {
        "name": "llm-inference-slo-burn",
        "rules": slo.slo_alerts(models, runbook_base_url=runbook_base_url),
    }
    return {"groups": [rendered[0], burn, *rendered[1:]]}


def _metrics_path_alerts(models: list[ModelConfig]) -> list[_Alert]:
    alerts = [
        _Alert(
            name=WATCHDOG,
            # Fires while any scrape target answers: the scraper, AMP's rules, Alertmanager and SNS
            # all work. A CloudWatch alarm pages when its heartbeat stops (stacks/observability_stack.py).
            expr="count(up == 1) > 0",
            for_="0m",
            severity="none",
            summary="Heartbeat: metrics arrive and alerts are delivered",
            description="Always firing on purpose; routed to the heartbeat topic only. If it stops, "
            "the CloudWatch alarm MetricsHeartbeatMissing pages.",
        ),
        _Alert(
            name="KubeStateMetricsDown",
            expr='absent(up{job="kube-state-metrics"} == 1)',
            for_="10m",
            severity="critical",
            summary="kube-state-metrics is not scraped: replica, node and pod alerts are blind",
            description="No successful kube-state-metrics scrape for 10 minutes.",
        ),
    ]
    for model in models:
        selector = f'model_id="{model.id}"'
        alerts.append(
            _Alert(
                name="ModelMetricsAbsent",
                # Ready pods (kube-state-metrics) but no vLLM target answering: the metrics path of
                # this model is broken and KEDA runs on its fallback. Zero pods at night is silent.
                expr=f"sum by (namespace, model_id) (model:kube_pod_ready:count{{{selector}}}) > 0\n"
                "unless on (namespace, model_id) "
                f'sum by (namespace, model_id) (up{{job="{VLLM_SCRAPE_JOB}", {selector}}} == 1)',
                for_="10m",
                severity="critical",
                summary=f"{model.id}: ready replicas but no vLLM metrics for 10 minutes",
                description="Pods are Ready but none of them is scraped; autoscaling runs on its "
                "fallback replica count and the SLO alerts of this model are blind.",
                extra_labels={"model_id": model.id},
            )
        )
    return alerts


def _deployment(model: ModelConfig, version: str) -> str:
    return f'namespace="{MODELS_NAMESPACE}", deployment="{instance_name(model.id, version)}"'


def _serving_alerts(models: list[ModelConfig], observability: ObservabilityConfig) -> list[_Alert]:
    alerts = []
    for model in models:
        selector = f'model_id="{model.id}"'
        queue_limit = model.autoscaling.target_queue_depth * observability.alert_queue_depth_factor
        for version in model.versions:
            labels = {"model_id": model.id, "model_version": version.name}
            deployment = _deployment(model, version.name)
            # The HPA KEDA manages for the version's ScaledObject (contract.kubernetes.keda_hpa_name).
            hpa = (
                f'namespace="{MODELS_NAMESPACE}", '
                f'horizontalpodautoscaler="{keda_hpa_name(model.id, version.name)}"'
            )
            startup = version.startup_timeout_minutes + 5
            alerts += [
                _Alert(
                    name="NoReadyReplicas",
                    # Wanted replicas (HPA or the off-hours scaler said so) but none available for
                    # longer than the version's own startup budget. A floor of 0 at night is silent.
                    expr=f"kube_deployment_spec_replicas{{{deployment}}} > 0\n"
                    "unless on (namespace, deployment) "
                    f"kube_deployment_status_replicas_available{{{deployment}}} > 0",
                    for_=f"{startup}m",
                    # A version without traffic (weight 0, not yet rolled out) is a ticket, not a page.
                    severity="critical" if version.weight > 0 else "warning",
                    summary=f"{model.id} {version.name}: {{{{ $value }}}} replicas wanted, none available "
                    f"for {startup} minutes",
                    description="Longer than the version's startup budget "
                    f"({version.startup_timeout_minutes} "
                    f"min + 5); it carries {version.weight}% of the model's traffic.",
                    extra_labels=labels,
                ),
                _Alert(
                    name="HighQueueDepth",
                    # Only when the autoscaler is at its ceiling: below it, a queue is what scaling
                    # out answers (pending pods have their own alert).
                    expr=f"model:vllm_num_requests_waiting:avg_per_replica{{{selector}, "
                    f'model_version="{version.name}"}} > {queue_limit:g}\n'
                    f"and on () (kube_horizontalpodautoscaler_status_desired_replicas{{{hpa}}}\n"
                    f"  >= kube_horizontalpodautoscaler_spec_max_replicas{{{hpa}}})",
                    for_="15m",
                    severity="warning",
                    summary=f"{model.id} {version.name}: {{{{ $value }}}} requests waiting per replica "
                    "at max replicas",
                    description=f"Above {observability.alert_queue_depth_factor:g} x the autoscaling target "
                    f"({model.autoscaling.target_queue_depth:g}) for 15 minutes with the autoscaler at "
                    f"max_replicas ({model.autoscaling.max_replicas}).",
                    extra_labels=labels,
                ),
            ]
    alerts += [
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
        _Alert(
            name="ModelPodsCrashLooping",
            expr="max by (namespace, pod, container, reason) "
            f'(kube_pod_container_status_waiting_reason{{{MODELS}, reason="CrashLoopBackOff"}}) > 0\n'
            "or max by (namespace, pod, container, reason) "
            f'(kube_pod_container_status_last_terminated_reason{{{MODELS}, reason="OOMKilled"}}\n'
            "  and on (namespace, pod, container) "
            f"increase(kube_pod_container_status_restarts_total{{{MODELS}}}[15m]) > 0)",
            for_="10m",
            severity="warning",
            summary=f"{{{{ $labels.pod }}}} in {MODELS_NAMESPACE}: {{{{ $labels.reason }}}}",
            description="A model container keeps restarting (CrashLoopBackOff, or OOMKilled and restarted "
            "within 15 minutes).",
        ),
    ]
    return alerts


def _node_alerts(observability: ObservabilityConfig) -> list[_Alert]:
    gpu_node = GPU_NODES
    hardware_xid = " or ".join(f"DCGM_FI_DEV_XID_ERRORS == {code}" for code in HARDWARE_XIDS)
    pending_for = 2 * CLUSTER_AUTOSCALER_MAX_PROVISION_MINUTES
    system = f'namespace=~"{"|".join(SYSTEM_NAMESPACES)}"'
    return [
        _Alert(
            name="GpuXidErrors",
            # The gauge keeps the last XID until the exporter restarts: alert on hardware codes only,
            # and only while the node still takes pods (cordoned or replaced ends it).
            expr=f"max by (node, gpu) ({hardware_xid})\n"
            "and on (node) max by (node) (kube_node_spec_unschedulable) == 0",
            for_="5m",
            severity="warning",
            summary="GPU {{ $labels.gpu }} on {{ $labels.node }}: XID {{ $value }}, node still schedulable",
            description="A hardware XID (48, 63, 64, 74, 79, 94, 95): the GPU needs a reset or the node "
            "a replacement. Application XIDs (13, 31, 43) do not alert; read the pod's logs.",
        ),
        _Alert(
            name="GpuNodeNotReady",
            # max by (node) drops kube-state-metrics' own pod/instance labels, so its rollout does
            # not start a new alert; nodes being drained for a Spot interruption are expected.
            expr='max by (node) (kube_node_status_condition{condition="Ready", status="true"}) == 0\n'
            f"and on (node) max by (node) ({gpu_node})\n"
            f'unless on (node) max by (node) (kube_node_spec_taint{{key="{SPOT_INTERRUPTION_TAINT_KEY}"}})',
            for_="15m",
            severity="warning",
            summary="GPU node {{ $labels.node }} not Ready for 15 minutes",
            description="Node auto-repair normally replaces it within this time; act if it has not.",
        ),
        _Alert(
            name="GpuNodeWithoutGpus",
            expr='max by (node) (kube_node_status_condition{condition="Ready", status="true"}) == 1\n'
            f"and on (node) max by (node) ({gpu_node})\n"
            'and on (node) max by (node) (kube_node_status_allocatable{resource="nvidia_com_gpu"}) == 0',
            for_="15m",
            severity="warning",
            summary="GPU node {{ $labels.node }} is Ready but advertises 0 GPUs",
            description="The NVIDIA device plugin is not running or the driver failed on this node.",
        ),
        _Alert(
            name="GpuPodsPending",
            # Unschedulable (not image pulls, which are Pending too) for longer than the Cluster
            # Autoscaler takes to give up on a Spot group and fall back to on-demand.
            expr="count by (namespace) (max by (namespace, pod) (kube_pod_status_unschedulable) == 1\n"
            "and on (namespace, pod) max by (namespace, pod) "
            '(kube_pod_container_resource_requests{resource="nvidia_com_gpu"}) > 0) > 0',
            for_=f"{pending_for}m",
            severity="warning",
            summary="{{ $value }} pods requesting GPUs unschedulable in {{ $labels.namespace }}",
            description=f"Pods asking for GPUs have been unschedulable for {pending_for} minutes, twice "
            "the Cluster Autoscaler's max node provision time: no group can add a node (max size, "
            "Spot and on-demand capacity, quota) or nothing fits.",
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
        _Alert(
            name="SystemDeploymentUnavailable",
            expr=f"max by (namespace, deployment) (kube_deployment_spec_replicas{{{system}}}) > 0\n"
            "unless on (namespace, deployment) max by (namespace, deployment) "
            f"(kube_deployment_status_replicas_available{{{system}}}) > 0",
            for_="15m",
            severity="warning",
            summary="{{ $labels.namespace }}/{{ $labels.deployment }} has no available replica",
            description="A platform Deployment (KEDA, Cluster Autoscaler, Load Balancer Controller, "
            "kube-state-metrics, collectors) is down: autoscaling, routing or metrics degrade.",
        ),
    ]
