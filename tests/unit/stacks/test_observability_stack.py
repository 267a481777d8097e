"""Observability: encrypted workspace, scraper with its role configuration, rules, Alertmanager to SNS."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
import yaml

from config import StageConfig
from observability.rules import alerting_rules, recording_rules
from observability.scrape_config import scrape_config
from observability.slo import slo_recording_rules
from tests.synth import SynthResult
from tests.templates import one, render, resources


@pytest.fixture
def template(synth: SynthResult, stage: str) -> dict[str, Any]:
    return synth.templates[stage]["Observability"]


@pytest.fixture
def config(synth: SynthResult, stage: str) -> StageConfig:
    return synth.configs[stage]


def test_existing_attributes_are_kept(synth: SynthResult, stage: str) -> None:
    observability = synth.stages[stage].observability
    assert observability.workspace is not None
    assert observability.metrics_key is not None
    assert "/workspaces/" in observability.prometheus_query_url
    assert not observability.prometheus_query_url.endswith("/")


def test_workspace_is_encrypted_with_the_metrics_key(template: dict[str, Any]) -> None:
    workspace = one(template, "AWS::APS::Workspace")[1]["Properties"]
    assert render(workspace["KmsKeyArn"]).startswith("<GetAtt:MetricsKey")


def _topic_id(template: dict[str, Any], prefix: str) -> str:
    return one(template, "AWS::SNS::Topic", prefix)[0]


def test_alertmanager_routes_each_severity_to_its_topic(
    template: dict[str, Any], config: StageConfig
) -> None:
    workspace = one(template, "AWS::APS::Workspace")[1]["Properties"]
    definition = yaml.safe_load(render(workspace["AlertManagerDefinition"]))
    alertmanager = yaml.safe_load(definition["alertmanager_config"])
    topic_of = {r["name"]: r["sns_configs"][0]["topic_arn"] for r in alertmanager["receivers"]}
    assert topic_of == {
        "pager": f"<Ref:{_topic_id(template, 'PagerTopic')}>",
        "ticket": f"<Ref:{_topic_id(template, 'AlertsTopic')}>",
        "heartbeat": f"<Ref:{_topic_id(template, 'HeartbeatTopic')}>",
    }
    for receiver in alertmanager["receivers"]:
        assert receiver["sns_configs"][0]["sigv4"]["region"] == (config.region or "<Ref:AWS::Region>")


def test_topics_are_encrypted_tls_only_and_subscribed_from_config(
    template: dict[str, Any], config: StageConfig
) -> None:
    topics = resources(template, "AWS::SNS::Topic")
    assert len(topics) == 3
    for topic in topics.values():
        assert render(topic["Properties"]["KmsMasterKeyId"]).startswith("<GetAtt:AlertsKey")
    endpoints: dict[str, list[str]] = {}
    for subscription in resources(template, "AWS::SNS::Subscription").values():
        props = subscription["Properties"]
        endpoints.setdefault(render(props["TopicArn"]), []).append(props["Endpoint"])
        assert props["Protocol"] == ("https" if props["Endpoint"].startswith("https://") else "email")
    ticket, pager = (
        f"<Ref:{one(template, 'AWS::SNS::Topic', prefix)[0]}>" for prefix in ("AlertsTopic", "PagerTopic")
    )
    assert sorted(endpoints.get(ticket, [])) == sorted(config.observability.alert_emails)
    assert sorted(endpoints.get(pager, [])) == sorted(config.observability.pager_subscriptions)
    assert f"<Ref:{_topic_id(template, 'HeartbeatTopic')}>" not in endpoints
    for policy in resources(template, "AWS::SNS::TopicPolicy").values():
        by_sid = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
        assert by_sid["AllowPublishThroughSSLOnly"]["Effect"] == "Deny"
        publish = by_sid["AlertManagerPublishes"]
        assert publish["Principal"] == {"Service": "aps.amazonaws.com"}
        assert publish["Condition"]["ArnEquals"] == {"aws:SourceArn": {"Fn::GetAtt": ["Workspace", "Arn"]}}


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lid: r["Properties"] for lid, r in resources(template, "AWS::CloudWatch::Alarm").items()}


def test_heartbeat_alarm_pages_when_the_watchdog_stops(template: dict[str, Any]) -> None:
    (alarm,) = [
        props for lid, props in _alarms(template).items() if lid.startswith("MetricsHeartbeatMissing")
    ]
    assert alarm["MetricName"] == "NumberOfMessagesPublished"
    assert alarm["Namespace"] == "AWS/SNS"
    assert (
        render(alarm["Dimensions"][0]["Value"])
        == f"<GetAtt:{_topic_id(template, 'HeartbeatTopic')}.TopicName>"
    )
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["Threshold"] == 1
    assert alarm["TreatMissingData"] == "breaching"  # a silent topic has no datapoints at all
    assert alarm["EvaluationPeriods"] * alarm["Period"] == 15 * 60
    pager = f"<Ref:{_topic_id(template, 'PagerTopic')}>"
    assert [render(action) for action in alarm["AlarmActions"]] == [pager]
    assert [render(action) for action in alarm["OKActions"]] == [pager]


def test_amp_health_alarms_watch_rules_and_notifications(template: dict[str, Any]) -> None:
    queries = {}
    for lid, props in _alarms(template).items():
        if lid.startswith("Amp"):
            (query,) = props["Metrics"]
            queries[query["Expression"]] = render(props["AlarmActions"][0])
    pager, ticket = (
        f"<Ref:{one(template, 'AWS::SNS::Topic', prefix)[0]}>" for prefix in ("PagerTopic", "AlertsTopic")
    )
    assert queries == {
        'SELECT SUM(RuleEvaluationFailures) FROM "AWS/Prometheus"': pager,
        'SELECT SUM(AlertManagerNotificationsFailed) FROM "AWS/Prometheus"': pager,
        'SELECT SUM(RuleGroupIterationsMissed) FROM "AWS/Prometheus"': ticket,
        'SELECT SUM(AlertManagerNotificationsThrottled) FROM "AWS/Prometheus"': ticket,
        'SELECT SUM(DiscardedSamples) FROM "AWS/Prometheus"': ticket,
    }


def test_alertmanager_may_use_the_alerts_key(template: dict[str, Any]) -> None:
    keys = resources(template, "AWS::KMS::Key")
    (alerts_key,) = [key for lid, key in keys.items() if lid.startswith("AlertsKey")]
    grants = [
        s
        for s in alerts_key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "aps.amazonaws.com"}
    ]
    assert len(grants) == 1
    assert sorted(grants[0]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert "aws:SourceAccount" in grants[0]["Condition"]["StringEquals"]


def test_rule_namespaces_hold_the_generated_rules(template: dict[str, Any], config: StageConfig) -> None:
    namespaces = {
        props["Name"]: props
        for props in (r["Properties"] for r in resources(template, "AWS::APS::RuleGroupsNamespace").values())
    }
    assert yaml.safe_load(namespaces["recording"]["Data"]) == recording_rules()
    assert yaml.safe_load(namespaces["slo"]["Data"]) == slo_recording_rules(list(config.models))
    assert yaml.safe_load(namespaces["alerting"]["Data"]) == alerting_rules(
        models=list(config.models),
        observability=config.observability,
        runbook_base_url=config.observability.runbook_base_url,
    )
    assert all(props["Workspace"] == {"Fn::GetAtt": ["Workspace", "Arn"]} for props in namespaces.values())


def test_scraper_reads_this_cluster_into_this_workspace(
    template: dict[str, Any], config: StageConfig
) -> None:
    scraper = one(template, "AWS::APS::Scraper")[1]["Properties"]
    blob = scraper["ScrapeConfiguration"]["ConfigurationBlob"]
    assert yaml.safe_load(base64.b64decode(blob)) == scrape_config(
        scrape_interval_seconds=config.observability.scrape_interval_seconds
    )
    assert scraper["Destination"]["AmpConfiguration"]["WorkspaceArn"] == {"Fn::GetAtt": ["Workspace", "Arn"]}
    eks = scraper["Source"]["EksConfiguration"]
    assert re.fullmatch(r"<Output:PublishOutputFnGetAttCluster\w+Arn\w+>", render(eks["ClusterArn"]))
    (security_group,) = eks["SecurityGroupIds"]
    assert "ClusterSecurityGroupId" in render(security_group)  # members reach each other's pods
    assert len(eks["SubnetIds"]) == len(config.availability_zones)
    # The edge subnets, which the model pods' NetworkPolicy admits (not the pod subnets).
    assert all("EdgeSubnet" in render(subnet) for subnet in eks["SubnetIds"])


def test_scraper_writes_to_the_cmk_workspace_through_its_role_configuration(
    template: dict[str, Any],
) -> None:
    """AMP guide: a scraper writes into a CMK workspace only with a same-account role configuration."""
    workspace = one(template, "AWS::APS::Workspace")[1]["Properties"]
    assert "KmsKeyArn" in workspace
    scraper = one(template, "AWS::APS::Scraper")[1]["Properties"]
    roles = scraper["RoleConfiguration"]
    source_id = roles["SourceRoleArn"]["Fn::GetAtt"][0]
    target_id = roles["TargetRoleArn"]["Fn::GetAtt"][0]
    iam_roles = resources(template, "AWS::IAM::Role")
    (source_trust,) = iam_roles[source_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert source_trust["Principal"] == {"Service": "scraper.aps.amazonaws.com"}
    assert "aws:SourceAccount" in source_trust["Condition"]["StringEquals"]
    assert ":scraper/*" in render(source_trust["Condition"]["ArnLike"]["aws:SourceArn"])
    (target_trust,) = iam_roles[target_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert target_trust["Principal"] == {"AWS": {"Fn::GetAtt": [source_id, "Arn"]}}
    assert ":scraper/*" in render(target_trust["Condition"]["StringLike"]["sts:ExternalId"])
    statements = [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": target_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    writes = [s for s in statements if s["Action"] == "aps:RemoteWrite"]
    assert [w["Resource"] for w in writes] == [{"Fn::GetAtt": ["Workspace", "Arn"]}]


def test_scraper_depends_on_its_roles(template: dict[str, Any]) -> None:
    (scraper,) = resources(template, "AWS::APS::Scraper").values()
    depends = set(scraper.get("DependsOn", []))
    assert any(d.startswith("ScraperSourceRole") for d in depends)
    assert any(d.startswith("ScraperTargetRole") for d in depends)


def test_grafana_dashboard_is_exposed_per_stage(synth: SynthResult, stage: str) -> None:
    dashboard = synth.stages[stage].observability.grafana_dashboard
    assert dashboard["uid"] == f"llm-inference-{stage}"
