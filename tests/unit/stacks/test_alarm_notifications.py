"""CloudWatch alarms may publish to the stage's alerts topic (session fixture `synth`), and the aspect
that makes alarms notify a topic, tested on a tiny stack of its own."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template
from constructs import Construct

from config import StageConfig
from constructs_lib.alarm_actions import NotifyOnEveryAlarm, notify_on_every_alarm
from tests.synth import SynthResult
from tests.unit.stacks.cfn import as_list, render, resources

CLOUDWATCH = {"Service": "cloudwatch.amazonaws.com"}


def _alerts_topic_id(templates: dict[str, dict[str, Any]]) -> str:
    (topic_id,) = resources(templates["Observability"], "AWS::SNS::Topic")
    return topic_id


def _account(config: StageConfig) -> Any:
    return config.account or {"Ref": "AWS::AccountId"}


# The stages -------------------------------------------------------------------------------------


def test_cloudwatch_may_use_the_alerts_key_for_this_account_only(synth: SynthResult, stage: str) -> None:
    keys = resources(synth.templates[stage]["Observability"], "AWS::KMS::Key")
    (alerts_key,) = [key for logical_id, key in keys.items() if logical_id.startswith("AlertsKey")]
    statements = alerts_key["Properties"]["KeyPolicy"]["Statement"]
    (grant,) = [s for s in statements if s.get("Principal") == CLOUDWATCH]
    assert grant["Effect"] == "Allow"
    assert sorted(as_list(grant["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert grant["Condition"] == {"StringEquals": {"aws:SourceAccount": _account(synth.configs[stage])}}
    # Alertmanager keeps its grant.
    assert [s for s in statements if s.get("Principal") == {"Service": "aps.amazonaws.com"}]


def test_cloudwatch_alarms_of_this_account_may_publish_to_the_alerts_topic(
    synth: SynthResult, stage: str
) -> None:
    config = synth.configs[stage]
    template = synth.templates[stage]["Observability"]
    ((_, policy),) = resources(template, "AWS::SNS::TopicPolicy").items()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    # The existing statements are kept (CDK replaced SNS's default policy with this one).
    assert {s["Sid"] for s in statements} == {
        "AllowPublishThroughSSLOnly",
        "AlertManagerPublishes",
        "CloudWatchAlarmsPublish",
    }
    (publish,) = [s for s in statements if s["Principal"] == CLOUDWATCH]
    assert (publish["Effect"], publish["Action"]) == ("Allow", "sns:Publish")
    assert publish["Resource"] == {"Ref": _alerts_topic_id(synth.templates[stage])}
    assert publish["Condition"]["StringEquals"] == {"aws:SourceAccount": _account(config)}
    partition = "aws" if config.region else "<Ref:AWS::Partition>"
    region = config.region or "<Ref:AWS::Region>"
    account = config.account or "<Ref:AWS::AccountId>"
    assert set(publish["Condition"]) == {"StringEquals", "ArnLike"}
    assert render(publish["Condition"]["ArnLike"]["aws:SourceArn"]) == (
        f"arn:{partition}:cloudwatch:{region}:{account}:alarm:*"
    )


# The aspect, on a stack of its own ---------------------------------------------------------------


def _alarm(scope: Construct, id_: str) -> cloudwatch.Alarm:
    return cloudwatch.Alarm(
        scope,
        id_,
        metric=cloudwatch.Metric(namespace="Test", metric_name="Errors"),
        threshold=1,
        evaluation_periods=1,
    )


def test_aspect_reaches_alarms_created_later_and_never_adds_an_action_twice() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Watched")
    topic = sns.Topic(stack, "Topic")
    notify_on_every_alarm(stack, topic)
    notify_on_every_alarm(stack, topic)  # a second registration adds nothing either
    early = _alarm(stack, "Early")
    NotifyOnEveryAlarm(topic).visit(early)  # already notifies the topic when the aspects run
    _alarm(Construct(stack, "Nested"), "Late")  # created after registration, one level down
    unwatched = cdk.Stack(app, "Unwatched")
    _alarm(unwatched, "Elsewhere")

    template = Template.from_stack(stack)
    (topic_id,) = template.find_resources("AWS::SNS::Topic")
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    assert len(alarms) == 2
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Properties"]["OKActions"] == [{"Ref": topic_id}]
    (elsewhere,) = Template.from_stack(unwatched).find_resources("AWS::CloudWatch::Alarm").values()
    assert "AlarmActions" not in elsewhere["Properties"]
