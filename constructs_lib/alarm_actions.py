"""Every CloudWatch alarm in a scope notifies one SNS topic, on ALARM and on OK (event alarms: on ALARM)."""

from __future__ import annotations

import jsii
from aws_cdk import AspectPriority, Aspects, IAspect
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct, IConstruct


class EventAlarm(cloudwatch.Alarm):
    """An alarm on a count of events (a failed drain, a dead letter, a rejected event).

    Its OK only means "no new event in the last period", not "fixed": the model may still be down.
    So it notifies on ALARM only, and each new event alarms again.
    """


@jsii.implements(IAspect)
class NotifyOnEveryAlarm:
    """Adds ``topic`` as an ALARM and an OK action of every ``cloudwatch.Alarm`` it visits (no OK
    action for an ``EventAlarm``).

    An alarm that already has the topic as an action is left as it is, so visiting it twice, or
    registering this aspect twice, never adds a duplicate action.
    """

    def __init__(self, topic: sns.ITopic) -> None:
        self.topic = topic
        self._action = cw_actions.SnsAction(topic)

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, cloudwatch.Alarm):
            return
        # AlarmBase's (protected) lists of the ARNs added so far: the only record of existing actions.
        if self.topic.topic_arn not in (node._alarm_action_arns or []):
            node.add_alarm_action(self._action)
        if not isinstance(node, EventAlarm) and self.topic.topic_arn not in (node._ok_action_arns or []):
            node.add_ok_action(self._action)


def notify_on_every_alarm(scope: Construct, topic: sns.ITopic) -> None:
    """Every ``cloudwatch.Alarm`` under ``scope`` notifies ``topic`` when it fires and when it recovers.

    An aspect, so it runs at synthesis: alarms created after this call (in this constructor or by
    any construct added to ``scope`` later) are covered too, without a list to maintain.
    """
    Aspects.of(scope).add(NotifyOnEveryAlarm(topic), priority=AspectPriority.MUTATING)
