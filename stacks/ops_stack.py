"""Operational automation of a stage: the Spot interruption handler and the off-hours scaler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import IgnoreMode, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from config import StageConfig
from constructs_lib.alarm_actions import notify_on_every_alarm
from constructs_lib.rotating_key import RotatingRetainedKey
from stacks.cluster_stack import ClusterHandle, gpu_node_groups_revision
from stacks.ops.offhours_scaler import OffHoursScaler
from stacks.ops.spot_interruption import SpotInterruptionHandler

REPO_ROOT = Path(__file__).resolve().parents[1]
LAMBDA_ASSET_EXCLUDES = [
    "/*",  # everything at the repository root ...
    "!/lambdas",  # ... except the lambdas/ package, packaged at the asset root,
    "!/contract",  # ... and the shared names it imports (contract/ is pure Python)
    "tests/",
    "__pycache__/",
    "*.pyc",
    "*.md",  # documentation stays in the repository
    ".mypy_cache/",
    ".pytest_cache/",
]
"""gitignore syntax. The asset holds lambdas/** and contract/** at its root, so handler strings read
``lambdas/<function>/handler.handler`` and ``import contract...`` resolves in the Lambda runtime."""


def lambda_code() -> lambda_.Code:
    """The repository's lambdas/ and contract/ folders as a plain zip asset (no Docker bundling)."""
    return lambda_.Code.from_asset(str(REPO_ROOT), exclude=LAMBDA_ASSET_EXCLUDES, ignore_mode=IgnoreMode.GIT)


class OpsStack(Stack):
    """Exposes ``key``, ``spot_interruption`` and ``offhours_scaler`` (None when off-hours is disabled).

    :param cluster: the stage's EKS cluster (its GPU node groups are the off-hours scaler's).
    :param vpc: the cluster's VPC.
    :param logs_key: the stage's CloudWatch Logs key.
    :param alerts_topic: the stage's alerts topic (``ObservabilityStack.alerts_topic``); every
        CloudWatch alarm in this stack notifies it on ALARM and on OK.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: StageConfig,
        vpc: ec2.IVpc,
        cluster: ClusterHandle,
        logs_key: kms.IKey,
        alerts_topic: sns.ITopic,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        # So on-call hears every alarm here; an aspect (runs at synth), so alarms created later count too.
        notify_on_every_alarm(self, alerts_topic)
        # Encrypts both functions' environments and their dead-letter queues.
        self.key = RotatingRetainedKey(
            self,
            "OpsKey",
            description=f"Operational functions' environment and dead-letter queues, stage {config.name}",
        )
        # EventBridge writes undeliverable Spot events into the encrypted DLQ (key policy, not IAM).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        code = lambda_code()
        self.spot_interruption = SpotInterruptionHandler(
            self,
            "SpotInterruption",
            spot=config.spot,
            cluster=cluster.cluster,
            vpc=vpc,
            code=code,
            key=self.key,
            logs_key=logs_key,
            log_retention_days=config.log_retention_days,
        )
        self.offhours_scaler: OffHoursScaler | None = None
        if config.offhours.enabled:
            self.offhours_scaler = OffHoursScaler(
                self,
                "OffHoursScaler",
                offhours=config.offhours,
                models=config.offhours_models,
                node_groups={
                    group.name: cluster.gpu_node_groups[group.name] for group in config.offhours_node_groups
                },
                node_groups_revision=gpu_node_groups_revision(config, list(config.offhours_node_groups)),
                cluster=cluster.cluster,
                vpc=vpc,
                code=code,
                key=self.key,
                logs_key=logs_key,
                log_retention_days=config.log_retention_days,
            )
