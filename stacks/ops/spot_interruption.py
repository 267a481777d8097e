"""EC2 Spot interruption warnings and rebalance recommendations -> cordon, taint and drain the node."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from config.operations import RebalanceAction, SpotConfig
from constructs_lib.alarm_actions import EventAlarm
from constructs_lib.alarmed_dead_letter_queue import AlarmedDeadLetterQueue
from constructs_lib.cluster_client_function import ClusterClientFunction
from constructs_lib.nag import acknowledge
from contract.events import EC2_SOURCE, REBALANCE_RECOMMENDATION, SPOT_INTERRUPTION_WARNING
from contract.functions import REBALANCE_ACTION_ENV
from contract.telemetry import (
    METRICS_NAMESPACE,
    METRICS_NAMESPACE_ENV,
    REJECTED_EVENTS_METRIC,
    SPOT_INTERRUPTION_SERVICE,
    pods_metric,
)
from stacks.ops import rbac
from stacks.ops.metrics import PERIOD, function_metric

HANDLER = "lambdas/spot_interruption/handler.handler"
RBAC_NAME = "llm-inference-spot-interruption"

# The warning is worth nothing after the two-minute notice: retry briefly, then keep it in the DLQ.
MAX_EVENT_AGE = Duration.minutes(2)
RETRY_ATTEMPTS = 2


class SpotInterruptionHandler(Construct):
    """Exposes ``function``, ``rules`` (by detail-type), ``rbac``, ``dead_letter_queue``, ``dlq_alarm``,
    ``drain_incomplete_alarm`` and ``rejected_events_alarm``.

    The rebalance rule exists only when ``spot.rebalance_action`` is not ``ignore``; the function
    also gets the action (``REBALANCE_ACTION``) so it can cordon or drain.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        spot: SpotConfig,
        cluster: eks.ICluster,
        vpc: ec2.IVpc,
        code: lambda_.Code,
        key: kms.IKey,
        logs_key: kms.IKey,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id_)
        dlq = AlarmedDeadLetterQueue(
            self, "DeadLetters", key=key, purpose="A Spot interruption or rebalance event"
        )
        self.dead_letter_queue, self.dlq_alarm = dlq.queue, dlq.alarm
        client = ClusterClientFunction(
            self,
            "Handler",
            cluster=cluster,
            vpc=vpc,
            code=code,
            handler=HANDLER,
            description="Cordons, taints and drains a node on an EC2 Spot interruption warning",
            kubernetes_group=rbac.SPOT_INTERRUPTION_GROUP,
            environment={
                REBALANCE_ACTION_ENV: spot.rebalance_action.value,
                METRICS_NAMESPACE_ENV: METRICS_NAMESPACE,
            },
            environment_key=key,
            logs_key=logs_key,
            log_retention_days=log_retention_days,
            timeout=Duration.seconds(spot.function_timeout_seconds),
            reserved_concurrency=spot.reserved_concurrency,
            dead_letter_queue=dlq.queue,
            max_event_age=MAX_EVENT_AGE,
            retry_attempts=RETRY_ATTEMPTS,
        )
        self.function = client.function
        self.rbac = eks.KubernetesManifest(
            self,
            "Rbac",
            cluster=cluster,
            manifest=rbac.spot_interruption_rbac(RBAC_NAME),
            overwrite=True,
        )
        describe_instances = iam.Policy(
            self,
            "DescribeInstances",
            statements=[
                # Availability zone and DNS name of the instance, to find its node by providerID.
                iam.PolicyStatement(actions=["ec2:DescribeInstances"], resources=["*"])
            ],
        )
        describe_instances.attach_to_role(client.role)
        acknowledge(
            describe_instances,
            "AwsSolutions-IAM5[Resource::*]",
            reason="ec2:DescribeInstances supports no resource-level permissions; it is read-only.",
        )

        # Pods still on the node at the deadline, or whose eviction failed: requests may be lost.
        self.drain_incomplete_alarm = EventAlarm(
            self,
            "DrainIncompleteAlarm",
            alarm_description="A Spot drain left pods not evicted (failed or still pending at the "
            "deadline); see the function's summary log line.",
            metric=cloudwatch.MathExpression(
                expression="failed + pending",
                using_metrics={
                    "failed": function_metric(SPOT_INTERRUPTION_SERVICE, pods_metric("failed")),
                    "pending": function_metric(SPOT_INTERRUPTION_SERVICE, pods_metric("pending")),
                },
                period=PERIOD,
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

        # An event the function refused (malformed, or past its deadline): that node was not drained.
        self.rejected_events_alarm = EventAlarm(
            self,
            "RejectedEventsAlarm",
            alarm_description="The Spot interruption handler rejected an event (malformed, or its "
            "deadline already passed): that node was not drained. See the 'event rejected' log line.",
            metric=function_metric(SPOT_INTERRUPTION_SERVICE, REJECTED_EVENTS_METRIC),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

        detail_types = [SPOT_INTERRUPTION_WARNING]
        if spot.rebalance_action is not RebalanceAction.IGNORE:
            detail_types.append(REBALANCE_RECOMMENDATION)
        self.rules: dict[str, events.Rule] = {}
        for detail_type in detail_types:
            rule = events.Rule(
                self,
                detail_type.removeprefix("EC2 ").replace(" ", ""),
                description=f"{detail_type} -> Spot interruption handler",
                event_pattern=events.EventPattern(source=[EC2_SOURCE], detail_type=[detail_type]),
            )
            rule.add_target(
                targets.LambdaFunction(
                    self.function,
                    dead_letter_queue=dlq.queue,
                    max_event_age=MAX_EVENT_AGE,
                    retry_attempts=RETRY_ATTEMPTS,
                )
            )
            self.rules[detail_type] = rule
