"""Scheduled scale-down of model Deployments and GPU node groups at night, and the morning restore."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import ArnFormat, CfnElement, Duration, Fn, RemovalPolicy, Stack, TimeZone
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from constructs import Construct

from config.operations import OffHoursConfig
from config.serving import ModelConfig
from constructs_lib.alarm_actions import EventAlarm
from constructs_lib.alarmed_dead_letter_queue import AlarmedDeadLetterQueue
from constructs_lib.cluster_client_function import ClusterClientFunction
from constructs_lib.nag import acknowledge
from contract.functions import (
    DEAD_LETTER_QUEUE_ARN_ENV,
    DEPLOYMENTS_ENV,
    FLOOR_NODES_ENV,
    FLOOR_REPLICAS_ENV,
    MODEL_NAMESPACE_ENV,
    NODE_GROUPS_ENV,
    OFF_HOURS_PER_NIGHT_ENV,
    READY_CHECK_MINUTES_ENV,
    READY_CHECK_ROLE_ARN_ENV,
    READY_CHECK_SCHEDULE_GROUP_ENV,
    RETRY_SECONDS_ENV,
)
from contract.kubernetes import MODELS_NAMESPACE, instance_name
from contract.telemetry import (
    METRICS_NAMESPACE,
    METRICS_NAMESPACE_ENV,
    MODELS_NOT_READY_METRIC,
    OFFHOURS_SCALER_SERVICE,
)
from lambdas.offhours_scaler.ready_check import SCHEDULE_NAME as READY_CHECK_SCHEDULE
from lambdas.offhours_scaler.records import RESTORE_TAG
from stacks.ops import rbac
from stacks.ops.metrics import function_metric

HANDLER = "lambdas/offhours_scaler/handler.handler"
RBAC_NAME = "llm-inference-offhours-scaler"
ACTIONS = ("scale_down", "scale_up")

RETRY_SECONDS = 240
"""How long a run keeps retrying busy node groups (UPDATING, ResourceInUseException, throttling)."""
TIMEOUT = Duration.seconds(RETRY_SECONDS + 60)  # lambdas/README.md: retry budget + 60 s of work
RESERVED_CONCURRENCY = 1  # one run at a time: a hand-run scale_up never races the night's scale_down
# A missed morning restore is still wanted an hour late; Lambda and Scheduler both retry that long.
MAX_EVENT_AGE = Duration.hours(1)
LAMBDA_RETRY_ATTEMPTS = 2
SCHEDULER_RETRY_ATTEMPTS = 3


def deployments_in_scope(models: list[ModelConfig]) -> list[str]:
    return [instance_name(model.id, version.name) for model in models for version in model.versions]


class OffHoursScaler(Construct):
    """Exposes ``function``, ``schedules`` (by action), ``ready_checks`` (the schedule group each
    scale-up books its readiness check in), ``rbac``, ``dead_letter_queue``, ``dlq_alarm`` and
    ``not_ready_alarm``.

    :param offhours: the stage's off-hours settings (schedules, time zone, floors).
    :param models: the models in scope; each version's Deployment is scaled.
    :param node_groups: the GPU node groups in scope, by config name.
    :param node_groups_revision: digest of those groups' replacement keys; in the environment so a
        replaced group (new generated name) changes this template and the new name is read.
        Default: empty.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        offhours: OffHoursConfig,
        models: list[ModelConfig],
        node_groups: Mapping[str, eks.Nodegroup],
        cluster: eks.ICluster,
        node_groups_revision: str = "",
        vpc: ec2.IVpc,
        code: lambda_.Code,
        key: kms.IKey,
        logs_key: kms.IKey,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id_)
        dlq = AlarmedDeadLetterQueue(self, "DeadLetters", key=key, purpose="An off-hours scaling run")
        self.dead_letter_queue, self.dlq_alarm = dlq.queue, dlq.alarm
        # Scheduler invokes the function and writes undeliverable runs to the encrypted DLQ.
        scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            ),
        )
        scheduler_role.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[key.key_arn])
        )
        # The one-time readiness checks that scale-ups book (lambdas/offhours_scaler/ready_check.py).
        self.ready_checks = scheduler.ScheduleGroup(self, "ReadyChecks", removal_policy=RemovalPolicy.DESTROY)
        client = ClusterClientFunction(
            self,
            "Handler",
            cluster=cluster,
            vpc=vpc,
            code=code,
            handler=HANDLER,
            description="Scales model Deployments and GPU node groups down at night and back up",
            kubernetes_group=rbac.OFFHOURS_SCALER_GROUP,
            environment={
                **self._environment(offhours, models, node_groups),
                "NODE_GROUPS_REVISION": node_groups_revision,
                READY_CHECK_MINUTES_ENV: str(offhours.ready_alarm_minutes),
                READY_CHECK_SCHEDULE_GROUP_ENV: self.ready_checks.schedule_group_name,
                READY_CHECK_ROLE_ARN_ENV: scheduler_role.role_arn,
                DEAD_LETTER_QUEUE_ARN_ENV: dlq.queue.queue_arn,
            },
            environment_key=key,
            logs_key=logs_key,
            log_retention_days=log_retention_days,
            timeout=TIMEOUT,
            reserved_concurrency=RESERVED_CONCURRENCY,
            dead_letter_queue=dlq.queue,
            max_event_age=MAX_EVENT_AGE,
            retry_attempts=LAMBDA_RETRY_ATTEMPTS,
        )
        self.function = client.function
        self._grant_node_group_scaling(client.role, list(node_groups.values()))
        self._grant_ready_check_booking(client.role, scheduler_role)
        # The Role lives in ServingStack's `models` namespace: OpsStack deploys after ServingStack.
        self.rbac = eks.KubernetesManifest(
            self,
            "Rbac",
            cluster=cluster,
            manifest=rbac.offhours_scaler_rbac(RBAC_NAME),
            overwrite=True,
        )
        self.not_ready_alarm = EventAlarm(
            self,
            "ModelsNotReadyAlarm",
            alarm_description=f"{offhours.ready_alarm_minutes} min after an off-hours scale-up, a model "
            "had no ready replica; the check's log line 'model not ready after scale-up' names it.",
            metric=function_metric(OFFHOURS_SCALER_SERVICE, MODELS_NOT_READY_METRIC),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            # No check ran in this period: nothing to say (a failed check lands in the DLQ).
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

        acknowledge(
            scheduler_role,
            f"AwsSolutions-IAM5[Resource::<{Stack.of(self).get_logical_id(self._function_resource())}.Arn>:*]",
            reason="aws_scheduler_targets grants lambda:InvokeFunction on this one function and its "
            "versions/aliases (`<arn>:*`); no other function matches.",
        )
        crons = {"scale_down": offhours.scale_down_cron, "scale_up": offhours.scale_up_cron}
        self.schedules = {
            action: scheduler.Schedule(
                self,
                action.title().replace("_", ""),
                description=f"{action} at cron({crons[action]}) {offhours.timezone}",
                schedule=scheduler.ScheduleExpression.expression(
                    f"cron({crons[action]})", TimeZone.of(offhours.timezone)
                ),
                time_window=scheduler.TimeWindow.off(),
                target=scheduler_targets.LambdaInvoke(
                    self.function,
                    input=scheduler.ScheduleTargetInput.from_object({"action": action}),
                    dead_letter_queue=dlq.queue,
                    max_event_age=MAX_EVENT_AGE,
                    retry_attempts=SCHEDULER_RETRY_ATTEMPTS,
                    role=scheduler_role,
                ),
            )
            for action in ACTIONS
        }

    def _function_resource(self) -> CfnElement:
        resource = self.function.node.default_child
        assert isinstance(resource, CfnElement)
        return resource

    @staticmethod
    def _environment(
        offhours: OffHoursConfig, models: list[ModelConfig], node_groups: Mapping[str, eks.Nodegroup]
    ) -> dict[str, str]:
        environment = {
            MODEL_NAMESPACE_ENV: MODELS_NAMESPACE,
            METRICS_NAMESPACE_ENV: METRICS_NAMESPACE,
            FLOOR_REPLICAS_ENV: str(offhours.floor_replicas),
            FLOOR_NODES_ENV: str(offhours.floor_nodes),
            RETRY_SECONDS_ENV: str(RETRY_SECONDS),
        }
        deployments = deployments_in_scope(models)
        if deployments:
            environment[DEPLOYMENTS_ENV] = ",".join(deployments)
        if node_groups:
            # Physical names: EKS generates them, so they are resolved at deploy time.
            environment[NODE_GROUPS_ENV] = Fn.join(
                ",", [group.nodegroup_name for group in node_groups.values()]
            )
        if offhours.hours_off_per_night is not None:
            environment[OFF_HOURS_PER_NIGHT_ENV] = str(offhours.hours_off_per_night)
        return environment

    def _grant_ready_check_booking(self, role: iam.IRole, scheduler_role: iam.IRole) -> None:
        """Create or move the one readiness-check schedule, run as the schedules' own role."""
        stack = Stack.of(self)
        schedule_arn = stack.format_arn(
            service="scheduler",
            resource="schedule",
            resource_name=f"{self.ready_checks.schedule_group_name}/{READY_CHECK_SCHEDULE}",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["scheduler:CreateSchedule", "scheduler:UpdateSchedule"], resources=[schedule_arn]
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[scheduler_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            )
        )

    def _grant_node_group_scaling(self, role: iam.IRole, node_groups: list[eks.Nodegroup]) -> None:
        """Read and resize only the node groups in scope; tag them only with the restore record."""
        if not node_groups:
            return
        arns = [group.nodegroup_arn for group in node_groups]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["eks:DescribeNodegroup", "eks:UpdateNodegroupConfig"], resources=arns
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["eks:TagResource", "eks:UntagResource"],
                resources=arns,
                conditions={"ForAllValues:StringEquals": {"aws:TagKeys": [RESTORE_TAG]}},
            )
        )
