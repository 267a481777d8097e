"""Alertmanager routing for the AMP workspace.

``critical`` pages (pager topic), ``warning`` opens a ticket (ticket topic), and the always-firing
``Watchdog`` goes to the heartbeat topic every few minutes, where a CloudWatch alarm pages when it
stops (stacks/observability_stack.py). Inhibitions keep one cause from paging several times.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

import yaml

REPEAT_INTERVAL = {"critical": "1h", "warning": "4h"}
"""Critical alerts repeat hourly until resolved; warnings every four hours to stay readable."""
HEARTBEAT_INTERVAL = "5m"
"""How often the Watchdog is re-sent; the CloudWatch heartbeat alarm allows three missed beats."""
WATCHDOG = "Watchdog"

MODEL_ALERTS = ("AvailabilityBudgetBurn", "TtftBudgetBurn", "HighQueueDepth", "KVCacheNearFull")
"""Symptoms of one model that a missing replica or missing metrics already explain."""
KUBE_STATE_ALERTS = (
    "NoReadyReplicas",
    "ModelMetricsAbsent",
    "HighQueueDepth",
    "ModelPodsCrashLooping",
    "GpuXidErrors",
    "GpuNodeNotReady",
    "GpuNodeWithoutGpus",
    "GpuPodsPending",
    "SpotInterruptionsHigh",
    "SystemDeploymentUnavailable",
)
"""Alerts that read kube-state-metrics: unreliable (stale, then flapping) while it is down."""

SUBJECT = (
    '[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] '
    "[{stage}] {{ .CommonLabels.alertname }}"
    "{{ with .CommonLabels.model_id }} {{ . }}{{ end }}"
    "{{ with .CommonLabels.model_version }} {{ . }}{{ end }}"
    "{{ with .CommonLabels.node }} {{ . }}{{ end }}"
)
"""E.g. ``[FIRING:1] [prod] NoReadyReplicas llama-3-1-70b v2``; resolved messages say RESOLVED."""

MESSAGE = (
    "{{ .Status | toUpper }}: {{ .CommonLabels.alertname }} ({{ .CommonLabels.severity }}) in {stage}\n"
    "{{ range .Alerts }}"
    "- [{{ .Status }}] {{ .Annotations.summary }}\n"
    "  {{ .Annotations.description }}\n"
    "  runbook: {{ .Annotations.runbook_url }}\n"
    "  since: {{ .StartsAt }}\n"
    "{{ end }}"
)
"""Plain text, one block per alert: readable in e-mail and in chat tools subscribed to the topic."""


@dataclass(frozen=True)
class Topics:
    pager: str
    ticket: str
    heartbeat: str


def _receiver(name: str, *, topic_arn: str, region: str, stage: str, severity: str) -> dict[str, Any]:
    return {
        "name": name,
        "sns_configs": [
            {
                "topic_arn": topic_arn,
                "sigv4": {"region": region},
                "subject": SUBJECT.replace("{stage}", stage),
                "message": MESSAGE.replace("{stage}", stage),
                "attributes": {"severity": severity, "stage": stage},
            }
        ],
    }


def inhibit_rules() -> list[dict[str, Any]]:
    model_alerts = "|".join(MODEL_ALERTS)
    has_model = 'model_id=~".+"'  # an absent label equals an absent label: require it on both sides
    return [
        {
            # No ready replica explains that model's errors, latency and queue.
            "source_matchers": ['alertname="NoReadyReplicas"', has_model],
            "target_matchers": [f'alertname=~"{model_alerts}"', has_model],
            "equal": ["model_id"],
        },
        {
            # Without metrics the model's other alerts are blind or stale.
            "source_matchers": ['alertname="ModelMetricsAbsent"', has_model],
            "target_matchers": [f'alertname=~"{model_alerts}"', has_model],
            "equal": ["model_id"],
        },
        {
            # A page about a model makes its tickets (the same SLO's slow burn included) redundant.
            "source_matchers": ['severity="critical"', has_model],
            "target_matchers": ['severity="warning"', has_model],
            "equal": ["model_id"],
        },
        {
            "source_matchers": ['alertname="KubeStateMetricsDown"'],
            "target_matchers": [f'alertname=~"{"|".join(KUBE_STATE_ALERTS)}"'],
        },
        {
            # A node that is down explains its GPU's faults; one alert, for the node.
            "source_matchers": ['alertname="GpuNodeNotReady"'],
            "target_matchers": ['alertname=~"GpuXidErrors|GpuNodeWithoutGpus"'],
            "equal": ["node"],
        },
    ]


def alertmanager_config(*, topics: Topics, region: str, stage: str) -> dict[str, Any]:
    """Route by ``severity``; messages carry ``severity`` and ``stage`` attributes for filters."""
    receivers = [
        _receiver("pager", topic_arn=topics.pager, region=region, stage=stage, severity="critical"),
        _receiver("ticket", topic_arn=topics.ticket, region=region, stage=stage, severity="warning"),
        _receiver("heartbeat", topic_arn=topics.heartbeat, region=region, stage=stage, severity="none"),
    ]
    return {
        "route": {
            "receiver": "ticket",
            "group_by": ["alertname", "model_id", "model_version", "node"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": REPEAT_INTERVAL["warning"],
            "routes": [
                {
                    "receiver": "heartbeat",
                    "matchers": [f'alertname="{WATCHDOG}"'],
                    "group_wait": "0s",
                    "group_interval": "1m",
                    "repeat_interval": HEARTBEAT_INTERVAL,
                },
                {
                    "receiver": "pager",
                    "matchers": ['severity="critical"'],
                    "repeat_interval": REPEAT_INTERVAL["critical"],
                },
                {
                    "receiver": "ticket",
                    "matchers": ['severity="warning"'],
                    "repeat_interval": REPEAT_INTERVAL["warning"],
                },
            ],
        },
        "inhibit_rules": inhibit_rules(),
        "receivers": receivers,
    }


def alertmanager_definition(*, topics: Topics, region: str, stage: str) -> str:
    """The AMP AlertManagerDefinition document: the config under ``alertmanager_config``."""
    config = alertmanager_config(topics=topics, region=region, stage=stage)
    # A literal block keeps the config readable in the template and never folds a CDK token.
    body = yaml.safe_dump(config, sort_keys=False, width=10_000)
    return "alertmanager_config: |\n" + textwrap.indent(body, "  ")
