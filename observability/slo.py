"""SLO recording rules and multi-window, multi-burn-rate alerts (Google SRE workbook, chapter 5).

Two SLIs per model, both as bad-event ratios over 5m, 30m, 1h, 6h and 3d:

- availability: /v1 requests answered with a 5xx, out of all /v1 requests;
- ttft: requests whose first token took longer than ``slo.ttft_p95_seconds``, read from the exact
  bucket of ``vllm:time_to_first_token_seconds`` (config/slo.py checks it is a bucket bound).

An alert fires when both its long and its short window burn the error budget faster than the
rate that would spend the given share of the budget in the long window; the short window makes it
stop soon after the cause is fixed. A traffic guard keeps a handful of requests from paging.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config.serving import ModelConfig
from config.slo import TTFT_OBJECTIVE
from contract.kubernetes import MODELS_NAMESPACE

WINDOWS = ("5m", "30m", "1h", "6h", "3d")
BY_MODEL = "namespace, model_id"
API_CALLS = f'namespace="{MODELS_NAMESPACE}", handler=~"/v1/.*"'
SLIS = ("availability", "ttft")
ALERT_NAMES = {"availability": "AvailabilityBudgetBurn", "ttft": "TtftBudgetBurn"}


@dataclass(frozen=True)
class BurnWindow:
    """Page or ticket when ``budget_share`` of the window's budget would be spent within ``long``."""

    severity: str
    long: str
    short: str
    budget_share: float
    for_: str

    def burn_rate(self, window_days: int) -> float:
        return round(self.budget_share * window_days * 24 / _hours(self.long), 6)


BURN_WINDOWS = (
    BurnWindow(severity="critical", long="1h", short="5m", budget_share=0.02, for_="2m"),
    BurnWindow(severity="critical", long="6h", short="30m", budget_share=0.05, for_="15m"),
    BurnWindow(severity="warning", long="3d", short="6h", budget_share=0.10, for_="1h"),
)
"""With a 30-day window: 14.4x over 1h and 5m, 6x over 6h and 30m (page); 1x over 3d and 6h (ticket)."""


def _hours(window: str) -> float:
    value, unit = int(window[:-1]), window[-1]
    return value * {"m": 1 / 60, "h": 1, "d": 24}[unit]


def requests_record(window: str) -> str:
    return f"model:slo_requests:rate{window}"


def ratio_record(sli: str, window: str) -> str:
    return f"model:slo_{sli}_bad:ratio_rate{window}"


def _le(bound: float) -> str:
    """prometheus_client writes le="1.0"; Prometheus 3 may normalise it; match either spelling."""
    return f'le=~"{bound:g}(\\\\.0)?"'


def _ttft_bad_ratio(model: ModelConfig, window: str) -> str:
    selector = f'namespace="{MODELS_NAMESPACE}", model_id="{model.id}"'
    fast = (
        f"sum by ({BY_MODEL}) (rate(vllm:time_to_first_token_seconds_bucket"
        f"{{{selector}, {_le(model.slo.ttft_p95_seconds)}}}[{window}]))"
    )
    total = f"sum by ({BY_MODEL}) (rate(vllm:time_to_first_token_seconds_count{{{selector}}}[{window}]))"
    return f"1 - {fast} / {total}"


def slo_recording_rules(models: list[ModelConfig]) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    for window in WINDOWS:
        requests = f"sum by ({BY_MODEL}) (rate(http_requests_total{{{API_CALLS}}}[{window}]))"
        errors = f'sum by ({BY_MODEL}) (rate(http_requests_total{{{API_CALLS}, status="5xx"}}[{window}]))'
        rules.append({"record": requests_record(window), "expr": requests})
        rules.append(
            {
                "record": ratio_record("availability", window),
                # No 5xx series yet is zero errors, not a missing SLI.
                "expr": f"({errors} or on ({BY_MODEL}) 0 * {requests_record(window)})\n"
                f"/ on ({BY_MODEL}) {requests_record(window)}",
            }
        )
        if models:
            # One rule per window (each model's own threshold bucket, joined with `or`): promtool
            # flags several rules recording the same name as inconsistent.
            per_model = [f"({_ttft_bad_ratio(model, window)})" for model in models]
            rules.append({"record": ratio_record("ttft", window), "expr": "\nor ".join(per_model)})
    return {"groups": [{"name": "llm-inference-slo", "interval": "1m", "rules": rules}]}


def objective(model: ModelConfig, sli: str) -> float:
    return model.slo.availability_objective if sli == "availability" else TTFT_OBJECTIVE


def burn_expression(model: ModelConfig, sli: str, window: BurnWindow) -> str:
    budget = 1 - objective(model, sli)
    threshold = f"{window.burn_rate(model.slo.window_days) * budget:.6g}"
    selector = f'{{model_id="{model.id}"}}'
    min_rate = f"{model.slo.min_requests_per_hour / 3600:.6g}"
    return (
        f"{ratio_record(sli, window.long)}{selector} > {threshold}\n"
        f"and {ratio_record(sli, window.short)}{selector} > {threshold}\n"
        f"and on ({BY_MODEL}) {requests_record(window.long)}{selector} >= {min_rate}"
    )


def slo_alerts(models: list[ModelConfig], *, runbook_base_url: str) -> list[dict[str, Any]]:
    alerts = []
    for model in models:
        for sli in SLIS:
            name = ALERT_NAMES[sli]
            budget = 1 - objective(model, sli)
            for window in BURN_WINDOWS:
                rate = window.burn_rate(model.slo.window_days)
                what = (
                    "of /v1 requests fail with a 5xx"
                    if sli == "availability"
                    else f"of requests wait longer than {model.slo.ttft_p95_seconds:g} s for a first token"
                )
                alerts.append(
                    {
                        "alert": name,
                        "expr": burn_expression(model, sli, window),
                        "for": window.for_,
                        "labels": {
                            "severity": window.severity,
                            "model_id": model.id,
                            "slo": sli,
                            "window": window.long,
                        },
                        "annotations": {
                            "summary": f"{model.id}: {{{{ $value | humanizePercentage }}}} {what} over "
                            f"{window.long} ({rate:g}x the budget burn of a {objective(model, sli):g} SLO)",
                            "description": f"Both the {window.long} and the {window.short} bad-event ratio "
                            f"are above {rate:g} x the error budget ({budget:.4g}); at this pace "
                            f"{window.budget_share:.0%} of the {model.slo.window_days}-day budget is gone "
                            f"within {window.long}.",
                            "runbook_url": f"{runbook_base_url}#{name.lower()}",
                        },
                    }
                )
    return alerts
