"""Alert of the `model` routing tier (Envoy AI Gateway, k8s_charts/model_gateway.py): the share of
requests the gateway answers with a 5xx. One rule group of its own, rule namespace ``gateway``.

Envoy's Prometheus output (`/stats/prometheus` on port 19001, scraped by the ``model-gateway`` job)
tags `http.<prefix>.downstream_rq_5xx` as ``envoy_http_downstream_rq_xx{envoy_response_code_class="5"}``
(Envoy's default tag extraction, source/common/config/well_known_names.cc: `_rq_(\\d)xx$` is
the response code class, `http.(<stat_prefix>.)` the connection manager prefix). It counts both
the gateway's own errors (no healthy backend or upstream reset: 503; timeout: 504) and 5xx answers
of vLLM it passes on.
"""

from __future__ import annotations

from typing import Any

from contract.kubernetes import MODELS_NAMESPACE

GROUP = "llm-inference-gateway"
# Envoy Gateway's own listeners (stats: eg-stats-http, bootstrap.yaml.tpl; readiness, which the ALB
# health-checks: eg-ready-http, listener_ready.go) would dilute the ratio: counted out.
REQUESTS = (
    f'envoy_http_downstream_rq_xx{{namespace="{MODELS_NAMESPACE}", job="model-gateway", '
    'envoy_http_conn_manager_prefix!~"eg-.*"}'
)
ERROR_RATIO = 0.05
"""5% of requests answered 5xx for 5 minutes: far above a healthy service's error rate."""
MIN_REQUESTS_PER_SECOND = 0.1
"""Below this a few failed requests are not a trend (quiet nights, staging)."""


def gateway_alerting_rules(*, runbook_base_url: str) -> dict[str, Any]:
    total = f"sum by (namespace) (rate({REQUESTS}[5m]))"
    errors = f'sum by (namespace) (rate({REQUESTS[:-1]}, envoy_response_code_class="5"}}[5m]))'
    alert = {
        "alert": "ModelGateway5xx",
        "expr": f"{errors} / {total} > {ERROR_RATIO}\nand {total} > {MIN_REQUESTS_PER_SECOND}",
        "for": "5m",
        "labels": {"severity": "critical"},
        "annotations": {
            "summary": "Model gateway answers {{ $value | humanizePercentage }} of requests with a 5xx",
            "description": f"Over {ERROR_RATIO:.0%} of requests through the Envoy AI Gateway got a 5xx for "
            "5 minutes: no ready pod of a model version (503), a model pod failing, or the gateway "
            "itself (ext_proc sidecar, config). Envoy access logs and `gen_ai_*` metrics name the route.",
            "runbook_url": f"{runbook_base_url}#modelgateway5xx",
        },
    }
    return {"groups": [{"name": GROUP, "rules": [alert]}]}
