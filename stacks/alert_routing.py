"""The stage's alert topics and the alarms that watch the alerting path itself.

- ``pager``: critical alerts (Alertmanager) and alarms that mean alerting is broken; subscribe a
  paging service's HTTPS endpoint or e-mail (``observability.pager_subscriptions``).
- ``ticket`` (the stack's ``alerts_topic``): warnings and the Ops stack's CloudWatch alarms, e-mail
  (``observability.alert_emails``).
- ``heartbeat``: Alertmanager's always-firing Watchdog every five minutes. No subscriber; the
  ``MetricsHeartbeatMissing`` alarm pages when nothing is published for 15 minutes.

Severity is carried by the topic, so no subscription filter policy is needed (CloudWatch alarm
messages carry no message attributes and would be dropped by one).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions

from config.platform import ObservabilityConfig
from constructs_lib.rotating_key import RotatingRetainedKey

APS_PRINCIPAL = "aps.amazonaws.com"
CLOUDWATCH_PRINCIPAL = "cloudwatch.amazonaws.com"
HEARTBEAT_PERIOD = Duration.minutes(5)
HEARTBEAT_MISSED_PERIODS = 3
"""Alertmanager re-sends the Watchdog every 5 minutes; three empty 5-minute periods page."""

AMP_NAMESPACE = "AWS/Prometheus"
AMP_HEALTH = {
    # metric (AMP user guide, "Use CloudWatch metrics to monitor ... resources") -> (pages?, periods)
    "RuleEvaluationFailures": (True, 1),
    "AlertManagerNotificationsFailed": (True, 1),
    "RuleGroupIterationsMissed": (False, 3),
    "AlertManagerNotificationsThrottled": (False, 1),
    "DiscardedSamples": (False, 3),
}
"""AMP's vended health metrics. The user guide does not name their workspace dimension, so the
alarms use a Metrics Insights query over the namespace: one workspace per stage and account."""


@dataclass(frozen=True)
class AlertTopics:
    key: kms.Key
    pager: sns.Topic
    ticket: sns.Topic
    heartbeat: sns.Topic


def alert_topics(stack: Stack, *, stage: str, observability: ObservabilityConfig) -> AlertTopics:
    """Construct ids stay at stack level (``AlertsKey``, ``AlertsTopic``) so the existing topic is kept."""
    key = RotatingRetainedKey(
        stack,
        "AlertsKey",
        description=f"Alert notifications of stage {stage}",
    )
    # Alertmanager publishes to the encrypted topics, so it must be able to use the key.
    key.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal(APS_PRINCIPAL)],
            actions=["kms:GenerateDataKey*", "kms:Decrypt"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
        )
    )
    # So do CloudWatch alarms. This is AWS's documented statement, without a condition: whether the
    # alarm's key use carries aws:SourceAccount is not documented, and a lost page is worse. Which
    # alarms may publish at all is restricted by the topic policies (source account and alarm ARN).
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchAlarmsUseTheKey",
            principals=[iam.ServicePrincipal(CLOUDWATCH_PRINCIPAL)],
            actions=["kms:GenerateDataKey*", "kms:Decrypt"],
            resources=["*"],
        )
    )

    def topic(id_: str, display: str) -> sns.Topic:
        return sns.Topic(stack, id_, display_name=display, master_key=key, enforce_ssl=True)

    ticket = topic("AlertsTopic", f"LLM inference alerts ({stage})")
    pager = topic("PagerTopic", f"LLM inference pages ({stage})")
    heartbeat = topic("HeartbeatTopic", f"LLM inference alerting heartbeat ({stage})")
    for address in observability.alert_emails:
        ticket.add_subscription(subscriptions.EmailSubscription(address))
    for endpoint in observability.pager_subscriptions:
        pager.add_subscription(
            subscriptions.UrlSubscription(endpoint)
            if endpoint.startswith("https://")
            else subscriptions.EmailSubscription(endpoint)
        )
    for alarmed in (pager, ticket):
        alarmed.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal(CLOUDWATCH_PRINCIPAL)],
                actions=["sns:Publish"],
                resources=[alarmed.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
    return AlertTopics(key=key, pager=pager, ticket=ticket, heartbeat=heartbeat)


def allow_alertmanager(stack: Stack, topics: AlertTopics, *, workspace_arn: str) -> None:
    """Only this stage's workspace may publish, to each of the three topics."""
    for topic in (topics.pager, topics.ticket, topics.heartbeat):
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlertManagerPublishes",
                principals=[iam.ServicePrincipal(APS_PRINCIPAL)],
                actions=["sns:Publish", "sns:GetTopicAttributes"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnEquals": {"aws:SourceArn": workspace_arn},
                },
            )
        )


def _notify(alarm: cloudwatch.Alarm, topic: sns.ITopic) -> cloudwatch.Alarm:
    action = cw_actions.SnsAction(topic)
    alarm.add_alarm_action(action)
    alarm.add_ok_action(action)
    return alarm


def heartbeat_alarm(stack: Stack, topics: AlertTopics) -> cloudwatch.Alarm:
    """The dead-man's switch: no Watchdog published to the heartbeat topic for 15 minutes pages.

    Missing data is breaching: a topic that stopped receiving publishes has no datapoints at all.
    """
    return _notify(
        cloudwatch.Alarm(
            stack,
            "MetricsHeartbeatMissing",
            alarm_description="No Watchdog from Alertmanager for 15 minutes: metrics stopped arriving, "
            "rules stopped evaluating or alerts stopped being delivered. Every other alert is blind; "
            "see docs/observability.md#metricsheartbeatmissing.",
            metric=topics.heartbeat.metric_number_of_messages_published(
                period=HEARTBEAT_PERIOD, statistic=cloudwatch.Stats.SUM
            ),
            threshold=1,
            evaluation_periods=HEARTBEAT_MISSED_PERIODS,
            datapoints_to_alarm=HEARTBEAT_MISSED_PERIODS,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        ),
        topics.pager,
    )


def amp_health_alarms(stack: Stack, topics: AlertTopics) -> dict[str, cloudwatch.Alarm]:
    """Alarms on AMP's own health; failing rules or notifications page, the rest open tickets."""
    alarms = {}
    for metric, (pages, periods) in AMP_HEALTH.items():
        alarms[metric] = _notify(
            cloudwatch.Alarm(
                stack,
                f"Amp{metric}",
                alarm_description=f"Managed Prometheus reports {metric} (namespace {AMP_NAMESPACE}); "
                f"see docs/observability.md#amp{metric.lower()}.",
                metric=cloudwatch.MathExpression(
                    # A CloudWatch Metrics Insights query over constants, not SQL input.
                    expression=f'SELECT SUM({metric}) FROM "{AMP_NAMESPACE}"',  # noqa: S608
                    using_metrics={},
                    period=Duration.minutes(5),
                ),
                threshold=1,
                evaluation_periods=periods,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                # AMP documents a missing metric as 0.
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            topics.pager if pages else topics.ticket,
        )
    return alarms
