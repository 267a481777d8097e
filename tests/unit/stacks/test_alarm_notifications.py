"""CloudWatch alarms notify the stage's alerts topic (on ALARM and on OK), and may publish to it.

The stage tests use the session fixtures `synth` and `pipeline_synth` (synthesised once); the aspect
itself is tested on a tiny stack of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template
from constructs import Construct

from config import StageConfig
from constructs_lib.alarm_actions import EventAlarm, NotifyOnEveryAlarm, notify_on_every_alarm
from stacks.inference_stage import InferenceStage
from tests.synth import PipelineSynthResult, SynthResult
from tests.templates import as_list, render, resources

CLOUDWATCH = {"Service": "cloudwatch.amazonaws.com"}


@dataclass(frozen=True)
class DeployedStage:
    """One stage's templates and construct tree, as `cdk deploy` or the pipeline ships it."""

    stage: InferenceStage
    templates: dict[str, dict[str, Any]]

    @property
    def config(self) -> StageConfig:
        return self.stage.config


@pytest.fixture(params=["app", "pipeline"])
def deployed(request: pytest.FixtureRequest, synth: SynthResult, stage: str) -> DeployedStage:
    if request.param == "app":
        return DeployedStage(synth.stages[stage], synth.templates[stage])
    pipeline_synth: PipelineSynthResult = request.getfixturevalue("pipeline_synth")
    return DeployedStage(pipeline_synth.stack.stages[stage], pipeline_synth.stage_templates[stage])


def _alerts_topic_id(templates: dict[str, dict[str, Any]]) -> str:
    # The ticket topic (alerts_topic); the pager and heartbeat topics have their own ids.
    (topic_id,) = [
        lid
        for lid in resources(templates["Observability"], "AWS::SNS::Topic")
        if lid.startswith("AlertsTopic")
    ]
    return topic_id


def _is_the_alerts_topic(deployed: DeployedStage, value: Any) -> bool:
    """Whether `value` is the Observability stack's output of ``{"Ref": <the alerts topic>}``."""
    output = value.get("Fn::GetStackOutput") if isinstance(value, dict) else None
    if output is None or output["StackName"] != deployed.stage.observability.stack_name:
        return False
    exported = deployed.templates["Observability"]["Outputs"][output["OutputName"]]["Value"]
    return bool(exported == {"Ref": _alerts_topic_id(deployed.templates)})


def _account(config: StageConfig) -> Any:
    return config.account or {"Ref": "AWS::AccountId"}


# The stages -------------------------------------------------------------------------------------


EVENT_ALARMS = ("DeadLettersDepthAlarm", "DrainIncompleteAlarm", "RejectedEventsAlarm", "ModelsNotReadyAlarm")
"""Alarms on event counts: their OK means "no new event", so they notify on ALARM only."""


def test_every_ops_alarm_notifies_the_alerts_topic(deployed: DeployedStage) -> None:
    alarms = resources(deployed.templates["Ops"], "AWS::CloudWatch::Alarm")
    # Spot: dead letters, incomplete drains, rejected events; off-hours scaler: dead letters.
    expected_at_least = 3 + (1 if deployed.config.offhours.enabled else 0)
    assert len(alarms) >= expected_at_least, sorted(alarms)
    for alarm_id, alarm in alarms.items():
        properties = alarm["Properties"]
        event_alarm = any(name in alarm_id for name in EVENT_ALARMS)
        listed = properties.get("AlarmActions", [])
        assert len(listed) == 1, (alarm_id, listed)  # no duplicate, no other target
        assert _is_the_alerts_topic(deployed, listed[0]), (alarm_id, listed)
        if event_alarm:
            assert "OKActions" not in properties, alarm_id  # "no new event" is not "recovered"
        else:
            (ok,) = properties["OKActions"]
            assert _is_the_alerts_topic(deployed, ok), alarm_id
        assert "InsufficientDataActions" not in properties, alarm_id


def test_no_alarm_in_any_stack_of_the_stage_is_silent(deployed: DeployedStage) -> None:
    """Alarms live only in the Ops stack today; one added to another stack needs actions too."""
    silent = [
        f"{stack}/{alarm_id}"
        for stack, template in deployed.templates.items()
        for alarm_id, alarm in resources(template, "AWS::CloudWatch::Alarm").items()
        if not alarm["Properties"].get("AlarmActions")
    ]
    assert silent == []


def test_cloudwatch_may_encrypt_with_the_alerts_key(synth: SynthResult, stage: str) -> None:
    keys = resources(synth.templates[stage]["Observability"], "AWS::KMS::Key")
    (alerts_key,) = [key for logical_id, key in keys.items() if logical_id.startswith("AlertsKey")]
    statements = alerts_key["Properties"]["KeyPolicy"]["Statement"]
    (grant,) = [s for s in statements if s.get("Principal") == CLOUDWATCH]
    assert grant["Effect"] == "Allow"
    assert sorted(as_list(grant["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    # AWS's documented statement, unconditioned; the topic policy limits who publishes.
    assert "Condition" not in grant
    # Alertmanager keeps its grant.
    assert [s for s in statements if s.get("Principal") == {"Service": "aps.amazonaws.com"}]


def test_cloudwatch_alarms_of_this_account_may_publish_to_the_alerts_topic(
    synth: SynthResult, stage: str
) -> None:
    config = synth.configs[stage]
    template = synth.templates[stage]["Observability"]
    topic_id = _alerts_topic_id(synth.templates[stage])
    (policy,) = [
        policy
        for policy in resources(template, "AWS::SNS::TopicPolicy").values()
        if policy["Properties"]["Topics"] == [{"Ref": topic_id}]
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    # The existing statements are kept (CDK replaced SNS's default policy with this one).
    assert {s["Sid"] for s in statements} == {
        "AllowPublishThroughSSLOnly",
        "AlertManagerPublishes",
        "CloudWatchAlarmsPublish",
    }
    (publish,) = [s for s in statements if s["Principal"] == CLOUDWATCH]
    assert (publish["Effect"], publish["Action"]) == ("Allow", "sns:Publish")
    assert publish["Resource"] == {"Ref": topic_id}
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


def test_an_event_alarm_notifies_on_alarm_only() -> None:
    stack = cdk.Stack(cdk.App(), "Watched")
    topic = sns.Topic(stack, "Topic")
    notify_on_every_alarm(stack, topic)
    EventAlarm(
        stack,
        "Event",
        metric=cloudwatch.Metric(namespace="T", metric_name="E"),
        threshold=1,
        evaluation_periods=1,
    )
    (alarm,) = Template.from_stack(stack).find_resources("AWS::CloudWatch::Alarm").values()
    assert len(alarm["Properties"]["AlarmActions"]) == 1
    assert "OKActions" not in alarm["Properties"]
