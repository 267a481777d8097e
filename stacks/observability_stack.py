"""Metrics, alerts, logs and traces of a stage, around an Amazon Managed Service for Prometheus workspace."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_aps as aps
from aws_cdk import aws_kms as kms
from constructs import Construct

from config import StageConfig


class ObservabilityStack(Stack):
    """Exposes ``workspace`` (AMP), ``metrics_key`` and ``prometheus_query_url``.

    ``prometheus_query_url`` is what KEDA's prometheus scaler and Grafana query (SigV4-signed).
    """

    def __init__(self, scope: Construct, id_: str, *, config: StageConfig, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        self.metrics_key = kms.Key(
            self,
            "MetricsKey",
            description=f"Managed Prometheus encryption for stage {config.name}",
            enable_key_rotation=True,
            pending_window=Duration.days(30),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.workspace = aps.CfnWorkspace(
            self, "Workspace", alias=f"llm-inference-{config.name}", kms_key_arn=self.metrics_key.key_arn
        )
        # Without the trailing slash AMP's PrometheusEndpoint has: clients append /api/v1/query.
        self.prometheus_query_url = (
            f"https://aps-workspaces.{self.region}.{self.url_suffix}/workspaces/"
            f"{self.workspace.attr_workspace_id}"
        )
