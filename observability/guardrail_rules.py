"""Alerts of the input/output filter (filter_proxy/): a spike of blocked requests, and a guardrail
that cannot be reached. One small rule group of its own, in the ``guardrails`` rule namespace."""

from __future__ import annotations

from typing import Any

from contract.kubernetes import MODELS_NAMESPACE

BLOCKS = f'llm_guardrail_interventions_total{{namespace="{MODELS_NAMESPACE}", outcome="blocked"}}'
ERRORS = f'llm_guardrail_errors_total{{namespace="{MODELS_NAMESPACE}"}}'
BY_MODEL = "namespace, model_id"
SPIKE_MIN_BLOCKS_PER_MINUTE = 5
"""Below this a rise is noise (a handful of users probing), whatever the ratio."""
SPIKE_FACTOR = 3
"""Blocks per minute over the last 10 minutes against the model's own rate over the last day."""
GROUP = "llm-inference-guardrails"


def guardrail_alerting_rules(*, runbook_base_url: str) -> dict[str, Any]:
    recent = f"sum by ({BY_MODEL}) (rate({BLOCKS}[10m]))"
    # The mean of the 10-minute rate over the day (a subquery): unlike rate(...[1d]) it is not
    # diluted while the series is younger than a day.
    baseline = f"avg_over_time(({recent})[1d:5m])"
    alerts = [
        {
            "alert": "GuardrailBlocksSpike",
            "expr": (
                f"{recent} * 60 > {SPIKE_MIN_BLOCKS_PER_MINUTE}\nand {recent} > {SPIKE_FACTOR} * {baseline}"
            ),
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "{{ $labels.model_id }}: {{ $value | humanize }} blocked requests per minute",
                "description": f"More than {SPIKE_MIN_BLOCKS_PER_MINUTE} blocked prompts or completions per "
                f"minute, over {SPIKE_FACTOR} x the model's rate of the last day, for 10 minutes: an attack "
                "or abuse campaign, or a client sending data it should not. The audit log names the rules.",
                "runbook_url": f"{runbook_base_url}#guardrailblocksspike",
            },
        },
        {
            "alert": "GuardrailUnavailable",
            "expr": f"sum by ({BY_MODEL}) (rate({ERRORS}[5m])) > 0",
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "{{ $labels.model_id }}: ApplyGuardrail calls failing ({{ $value | humanize }}/s)",
                "description": "The filter proxy cannot reach its guardrail (throttling, quota, permissions, "
                "network). With on_error: block these requests are refused with 503; with allow they pass "
                "unchecked.",
                "runbook_url": f"{runbook_base_url}#guardrailunavailable",
            },
        },
    ]
    return {"groups": [{"name": GROUP, "rules": alerts}]}
