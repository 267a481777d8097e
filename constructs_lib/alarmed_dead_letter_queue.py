"""An encrypted, TLS-only SQS dead-letter queue with an alarm each time something lands in it."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from constructs_lib.alarm_actions import EventAlarm
from constructs_lib.nag import acknowledge

DLQ_RETENTION = Duration.days(14)  # the SQS maximum: time to read, fix and redrive by hand


class AlarmedDeadLetterQueue(Construct):
    """Exposes ``queue`` and ``alarm`` (a message sent to the queue within a minute).

    The alarm counts arrivals, not depth: a depth alarm stays in ALARM for the queue's 14-day
    retention and hides every later failure. Lambda, EventBridge and Scheduler deliver dead letters
    with SendMessage, which ``NumberOfMessagesSent`` counts.

    :param key: KMS key that encrypts the messages; senders need encrypt rights on it.
    :param purpose: what ends up here, for the alarm description.
    """

    def __init__(self, scope: Construct, id_: str, *, key: kms.IKey, purpose: str) -> None:
        super().__init__(scope, id_)
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.alarm = EventAlarm(
            self,
            "DepthAlarm",  # id kept: renaming replaces the alarm
            alarm_description=f"{purpose} reached the dead-letter queue; read it and redrive by hand. "
            "Fires once per arrival; the queue may hold older messages too.",
            metric=self.queue.metric_number_of_messages_sent(
                period=Duration.minutes(1), statistic=cloudwatch.Stats.SUM
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        acknowledge(
            self.queue,
            "AwsSolutions-SQS3",
            reason="This queue is itself a dead-letter queue (of an EventBridge or Scheduler target "
            "and of the function's asynchronous invocations); nothing consumes it, so it needs none.",
        )
