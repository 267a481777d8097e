"""A Grafana dashboard (Amazon Managed Grafana, AMP data source) with each model's golden signals.

One dashboard per stage: a row per model, repeated over the ``model_id`` variable (golden signals,
SLOs, latency breakdown, engine state), then a cluster row (scaling state, capacity, cost). Render
it with ``python -m observability.dashboard <stage>``; ``--push`` uploads it (docs/observability.md).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from config import StageConfig, load_stages
from contract.kubernetes import (
    CAPACITY_TYPE_LABEL,
    KEDA_HPA_PREFIX,
    MODEL_ID_LABEL,
    MODELS_NAMESPACE,
    NODE_GROUP_LABEL,
    SPOT_INTERRUPTION_TAINT_KEY,
)
from contract.telemetry import GPU_NODES, ksm_label
from observability.gateway_rules import REQUESTS as GATEWAY_REQUESTS

MODEL = 'model_id=~"$model_id"'
POD_MODEL_LABEL = ksm_label(MODEL_ID_LABEL)
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
MODELS = f'namespace="{MODELS_NAMESPACE}"'
NODE_GROUP = ksm_label(NODE_GROUP_LABEL)
CAPACITY_TYPE = ksm_label(CAPACITY_TYPE_LABEL)

PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("Requests per second", "reqps", [("{{model_version}}", f"model:vllm_http_requests:rate5m{{{MODEL}}}")]),
    (
        "Error ratio (5xx)",
        "percentunit",
        [("{{model_version}}", f"model:vllm_http_errors:ratio_rate5m{{{MODEL}}}")],
    ),
    (
        "Time to first token",
        "s",
        [
            ("p50 {{model_version}}", f"model:vllm_time_to_first_token_seconds:p50_5m{{{MODEL}}}"),
            ("p95 {{model_version}}", f"model:vllm_time_to_first_token_seconds:p95_5m{{{MODEL}}}"),
        ],
    ),
    (
        "Inter-token latency p95",
        "s",
        [("{{model_version}}", f"model:vllm_inter_token_latency_seconds:p95_5m{{{MODEL}}}")],
    ),
    (
        "Queue depth",
        "short",
        [
            ("waiting {{model_version}}", f"model:vllm_num_requests_waiting:sum{{{MODEL}}}"),
            ("per replica {{model_version}}", f"model:vllm_num_requests_waiting:avg_per_replica{{{MODEL}}}"),
            ("running {{model_version}}", f"model:vllm_num_requests_running:sum{{{MODEL}}}"),
        ],
    ),
    (
        "Replicas",
        "short",
        [
            ("pods {{model_version}}", f"model:kube_pod:count{{{MODEL}}}"),
            ("ready {{model_version}}", f"model:kube_pod_ready:count{{{MODEL}}}"),
        ],
    ),
    (
        "Tokens per second",
        "short",
        [
            ("generated {{model_version}}", f"model:vllm_generation_tokens:rate5m{{{MODEL}}}"),
            ("prompt {{model_version}}", f"model:vllm_prompt_tokens:rate5m{{{MODEL}}}"),
        ],
    ),
    (
        "KV cache used",
        "percentunit",
        [("{{model_version}}", f"model:vllm_kv_cache_usage_perc:avg{{{MODEL}}}")],
    ),
    (
        "GPU utilisation and memory of the model's pods",
        "percentunit",
        [
            (
                "utilisation",
                f"avg by ({POD_MODEL_LABEL}) (DCGM_FI_DEV_GPU_UTIL{{{MODELS}}} / 100 "
                f"* on (namespace, pod) group_left ({POD_MODEL_LABEL}) "
                f'kube_pod_labels{{{MODELS}, {POD_MODEL_LABEL}=~"$model_id"}})',
            ),
            (
                "memory",
                f"sum by ({POD_MODEL_LABEL}) (DCGM_FI_DEV_FB_USED{{{MODELS}}} "
                f"* on (namespace, pod) group_left ({POD_MODEL_LABEL}) "
                f'kube_pod_labels{{{MODELS}, {POD_MODEL_LABEL}=~"$model_id"}}) / '
                f"sum by ({POD_MODEL_LABEL}) ((DCGM_FI_DEV_FB_USED{{{MODELS}}} "
                f"+ DCGM_FI_DEV_FB_FREE{{{MODELS}}}) "
                f"* on (namespace, pod) group_left ({POD_MODEL_LABEL}) "
                f'kube_pod_labels{{{MODELS}, {POD_MODEL_LABEL}=~"$model_id"}})',
            ),
        ],
    ),
    (
        "SLO: bad-event ratio (availability)",
        "percentunit",
        [
            (f"{window}", f'model:slo_availability_bad:ratio_rate{window}{{model_id=~"$model_id"}}')
            for window in ("5m", "1h", "6h", "3d")
        ],
    ),
    (
        "SLO: bad-event ratio (TTFT over threshold)",
        "percentunit",
        [
            (f"{window}", f'model:slo_ttft_bad:ratio_rate{window}{{model_id=~"$model_id"}}')
            for window in ("5m", "1h", "6h", "3d")
        ],
    ),
    (
        "End-to-end latency and queue time p95",
        "s",
        [
            ("e2e {{model_version}}", f"model:vllm_e2e_request_latency_seconds:p95_5m{{{MODEL}}}"),
            ("queue {{model_version}}", f"model:vllm_request_queue_time_seconds:p95_5m{{{MODEL}}}"),
        ],
    ),
    (
        "Preemptions and aborted requests per second",
        "reqps",
        [
            ("preemptions {{model_version}}", f"model:vllm_preemptions:rate5m{{{MODEL}}}"),
            ("aborted {{model_version}}", f"model:vllm_aborted_requests:rate5m{{{MODEL}}}"),
        ],
    ),
    (
        "Prefix cache hit rate",
        "percentunit",
        [("{{model_version}}", f"model:vllm_prefix_cache_hits:ratio_rate5m{{{MODEL}}}")],
    ),
    (
        "Autoscaler: desired, current and max replicas",
        "short",
        [
            (
                f"{name} {{{{horizontalpodautoscaler}}}}",
                f"max by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_{metric}"
                f'{{{MODELS}, horizontalpodautoscaler=~"{KEDA_HPA_PREFIX}$model_id-.*"}})',
            )
            for name, metric in (
                ("desired", "status_desired_replicas"),
                ("current", "status_current_replicas"),
                ("max", "spec_max_replicas"),
            )
        ],
    ),
]

CLUSTER_PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "GPU nodes by node group and capacity type",
        "short",
        [
            (
                f"{{{{{NODE_GROUP}}}}} {{{{{CAPACITY_TYPE}}}}}",
                f"count by ({NODE_GROUP}, {CAPACITY_TYPE}) ({GPU_NODES})",
            )
        ],
    ),
    (
        "Unschedulable GPU pods",
        "short",
        [
            (
                "{{namespace}}",
                "count by (namespace) (max by (namespace, pod) (kube_pod_status_unschedulable) == 1 "
                "and on (namespace, pod) max by (namespace, pod) "
                '(kube_pod_container_resource_requests{resource="nvidia_com_gpu"}) > 0) or vector(0)',
            )
        ],
    ),
    (
        "GPU node-hours (last 24 hours)",
        "short",
        [("node-hours", f"sum_over_time(count({GPU_NODES})[24h:5m]) * 5 / 60")],
    ),
    (
        "Generated tokens per GPU-hour",
        "short",
        [
            (
                "tokens / GPU-hour",
                "sum(model:vllm_generation_tokens:rate5m) * 3600 / "
                'sum(kube_node_status_allocatable{resource="nvidia_com_gpu"})',
            )
        ],
    ),
    (
        "Spot interruptions (last hour, cluster)",
        "short",
        [
            (
                "interrupted nodes",
                "count(max_over_time(kube_node_spec_taint"
                f'{{key="{SPOT_INTERRUPTION_TAINT_KEY}"}}[1h])) or vector(0)',
            )
        ],
    ),
    (
        # `model` routing only (k8s_charts/model_gateway.py); empty in stages without the gateway.
        "Model gateway requests by status class",
        "reqps",
        [
            (
                "{{envoy_response_code_class}}xx",
                f"sum by (envoy_response_code_class) (rate({GATEWAY_REQUESTS}[5m]))",
            )
        ],
    ),
]


def _panel(
    index: int, title: str, unit: str, targets: list[tuple[str, str]], *, panel_id: int, top: int
) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 8, "x": (index % 3) * 8, "y": top + (index // 3) * 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + n), "expr": expr, "legendFormat": legend, "datasource": DATASOURCE}
            for n, (legend, expr) in enumerate(targets)
        ],
    }


def grafana_dashboard(config: StageConfig) -> dict[str, Any]:
    model_ids = [model.id for model in config.models]
    row = {
        "id": 1,
        "type": "row",
        "title": "Model $model_id",
        "repeat": "model_id",
        "collapsed": False,
        "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0},
        "panels": [],
    }
    cluster_top = 1 + ((len(PANELS) + 2) // 3) * 8
    cluster_id = len(PANELS) + 2
    cluster_row = {
        "id": cluster_id,
        "type": "row",
        "title": "Cluster: scaling, capacity and cost",
        "collapsed": False,
        "gridPos": {"h": 1, "w": 24, "x": 0, "y": cluster_top},
        "panels": [],
    }
    return {
        "uid": f"llm-inference-{config.name}",
        "title": f"LLM inference ({config.name}): golden signals per model",
        "tags": ["llm-inference", config.name],
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {
                    "name": "model_id",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": "label_values(model:vllm_http_requests:rate5m, model_id)",
                    "multi": True,
                    "includeAll": True,
                    "current": {"text": model_ids, "value": model_ids},
                },
            ]
        },
        "panels": [
            row,
            *(_panel(index, *panel, panel_id=index + 2, top=1) for index, panel in enumerate(PANELS)),
            cluster_row,
            *(
                _panel(index, *panel, panel_id=cluster_id + 1 + index, top=cluster_top + 1)
                for index, panel in enumerate(CLUSTER_PANELS)
            ),
        ],
    }


def main(stage: str) -> None:
    print(json.dumps(grafana_dashboard(load_stages()[stage]), indent=2))


if __name__ == "__main__":
    main(sys.argv[1])
