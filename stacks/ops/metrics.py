"""The CloudWatch namespace the operational functions publish to (embedded metric format)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

from contract.telemetry import METRICS_NAMESPACE

PERIOD = Duration.minutes(5)


def function_metric(service: str, name: str) -> cloudwatch.Metric:
    """Sum over 5 minutes of a metric a function emits; Powertools adds the ``service`` dimension."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service},
        statistic=cloudwatch.Stats.SUM,
        period=PERIOD,
    )
