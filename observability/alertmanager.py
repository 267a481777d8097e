"""Alertmanager routing for the AMP workspace: critical and warning alerts to the stage's SNS topic."""

from __future__ import annotations

import textwrap
from typing import Any

import yaml

SEVERITIES = ("critical", "warning")
REPEAT_INTERVAL = {"critical": "1h", "warning": "4h"}
"""Critical alerts repeat hourly until resolved; warnings every four hours to stay readable."""


def alertmanager_config(*, topic_arn: str, region: str, stage: str) -> dict[str, Any]:
    """Route by ``severity``; each receiver tags its messages so subscribers can filter on them."""
    receivers = [
        {
            "name": severity,
            "sns_configs": [
                {
                    "topic_arn": topic_arn,
                    "sigv4": {"region": region},
                    "subject": f"[{stage}] [{severity}] {{{{ .CommonLabels.alertname }}}}",
                    "attributes": {"severity": severity, "stage": stage},
                }
            ],
        }
        for severity in SEVERITIES
    ]
    return {
        "route": {
            "receiver": "warning",
            "group_by": ["alertname", "model_id", "model_version", "node"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": REPEAT_INTERVAL["warning"],
            "routes": [
                {
                    "receiver": severity,
                    "matchers": [f'severity="{severity}"'],
                    "repeat_interval": REPEAT_INTERVAL[severity],
                }
                for severity in SEVERITIES
            ],
        },
        "inhibit_rules": [
            {
                # A node that is down explains the pods on it; page once, for the node.
                "source_matchers": ['alertname="GpuNodeNotReady"'],
                "target_matchers": ['alertname="GpuXidErrors"'],
                "equal": ["node"],
            }
        ],
        "receivers": receivers,
    }


def alertmanager_definition(*, topic_arn: str, region: str, stage: str) -> str:
    """The AMP AlertManagerDefinition document: the config under ``alertmanager_config``."""
    config = alertmanager_config(topic_arn=topic_arn, region=region, stage=stage)
    # A literal block keeps the config readable in the template and never folds a CDK token.
    body = yaml.safe_dump(config, sort_keys=False, width=10_000)
    return "alertmanager_config: |\n" + textwrap.indent(body, "  ")
