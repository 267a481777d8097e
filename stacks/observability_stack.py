"""Metrics, alerts, logs and traces of a stage, around an Amazon Managed Service for Prometheus workspace."""

from __future__ import annotations

from typing import Any

import yaml
from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_aps as aps
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from config import StageConfig
from constructs_lib.rotating_key import RotatingRetainedKey
from observability.alertmanager import Topics, alertmanager_definition
from observability.dashboard import grafana_dashboard
from observability.gateway_rules import gateway_alerting_rules
from observability.guardrail_rules import guardrail_alerting_rules
from observability.rules import alerting_rules, recording_rules
from observability.scrape_config import scrape_config_blob
from observability.slo import slo_recording_rules
from stacks import alert_routing
from stacks.cluster_stack import ClusterHandle

APS_PRINCIPAL = "aps.amazonaws.com"
CLOUDWATCH_PRINCIPAL = "cloudwatch.amazonaws.com"
SCRAPER_PRINCIPAL = "scraper.aps.amazonaws.com"
"""The service that assumes a scraper's source role (AMP user guide, cross-account / CMK setup)."""


class ObservabilityStack(Stack):
    """Exposes ``workspace`` (AMP), ``metrics_key``, ``prometheus_query_url``, ``alerts_topic``,
    ``pager_topic``, ``heartbeat_topic``, ``heartbeat_alarm``, ``amp_health_alarms``, ``scraper``,
    ``rule_namespaces`` and ``grafana_dashboard`` (JSON model, see docs/observability.md).

    ``prometheus_query_url`` is what KEDA's prometheus scaler and Grafana query (SigV4-signed).
    ``alerts_topic`` (tickets) receives warnings and the stage's CloudWatch alarm actions;
    ``pager_topic`` critical alerts; stacks/alert_routing.py says why three topics.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: StageConfig,
        vpc: ec2.IVpc,
        cluster: ClusterHandle,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.metrics_key = RotatingRetainedKey(
            self,
            "MetricsKey",
            description=f"Managed Prometheus encryption for stage {config.name}",
        )
        topics = alert_routing.alert_topics(self, stage=config.name, observability=config.observability)
        self.alerts_topic, self.pager_topic, self.heartbeat_topic = (
            topics.ticket,
            topics.pager,
            topics.heartbeat,
        )
        self.workspace = aps.CfnWorkspace(
            self,
            "Workspace",
            alias=f"llm-inference-{config.name}",
            kms_key_arn=self.metrics_key.key_arn,
            alert_manager_definition=alertmanager_definition(
                topics=Topics(
                    pager=topics.pager.topic_arn,
                    ticket=topics.ticket.topic_arn,
                    heartbeat=topics.heartbeat.topic_arn,
                ),
                region=self.region,
                stage=config.name,
            ),
        )
        alert_routing.allow_alertmanager(self, topics, workspace_arn=self.workspace.attr_arn)
        self.heartbeat_alarm = alert_routing.heartbeat_alarm(self, topics)
        self.amp_health_alarms = alert_routing.amp_health_alarms(self, topics)
        # Without the trailing slash AMP's PrometheusEndpoint has: clients append /api/v1/query.
        self.prometheus_query_url = (
            f"https://aps-workspaces.{self.region}.{self.url_suffix}/workspaces/"
            f"{self.workspace.attr_workspace_id}"
        )
        self.rule_namespaces = {
            name: aps.CfnRuleGroupsNamespace(
                self,
                f"{name.capitalize()}Rules",
                name=name,
                workspace=self.workspace.attr_arn,
                data=yaml.safe_dump(document, sort_keys=False, width=10_000),
            )
            for name, document in (
                ("recording", recording_rules()),
                ("slo", slo_recording_rules(list(config.models))),
                (
                    "alerting",
                    alerting_rules(
                        models=list(config.models),
                        observability=config.observability,
                        runbook_base_url=config.observability.runbook_base_url,
                    ),
                ),
                # Input/output filtering (observability/guardrail_rules.py).
                (
                    "guardrails",
                    guardrail_alerting_rules(runbook_base_url=config.observability.runbook_base_url),
                ),
                # `model` routing (observability/gateway_rules.py): silent where no gateway runs.
                ("gateway", gateway_alerting_rules(runbook_base_url=config.observability.runbook_base_url)),
            )
        }
        self._scraper(config, vpc=vpc, cluster=cluster)
        self.grafana_dashboard = grafana_dashboard(config)

    def _scraper(self, config: StageConfig, *, vpc: ec2.IVpc, cluster: ClusterHandle) -> None:
        """The AMP managed scraper, writing to the CMK-encrypted workspace through a role configuration.

        AMP's guide ("Creating scraper for workspaces enabled with customer managed keys") has a
        scraper write to a CMK workspace only with a role configuration (source and target role in
        the same account). Its cluster access needs nothing here: with the cluster's authentication
        mode ``API`` AMP creates the scraper's access entry (with its access policy) itself, and an
        IAM principal can be in only one access entry, so the stack must not create another.
        """
        scrapers_in_this_account = self.format_arn(
            service="aps", resource="scraper", resource_name="*", arn_format=ArnFormat.SLASH_RESOURCE_NAME
        )
        source_role = iam.Role(
            self,
            "ScraperSourceRole",
            description=f"Assumed by the AMP managed scraper of stage {config.name}",
            assumed_by=iam.ServicePrincipal(
                SCRAPER_PRINCIPAL,
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    # The scraper's ARN is known only after it exists, hence any scraper of this account.
                    "ArnLike": {"aws:SourceArn": scrapers_in_this_account},
                },
            ),
        )
        target_role = iam.Role(
            self,
            "ScraperTargetRole",
            description=f"Remote-writes the AMP scraper's samples into stage {config.name}'s workspace",
            assumed_by=iam.ArnPrincipal(source_role.role_arn).with_conditions(
                {"StringLike": {"sts:ExternalId": scrapers_in_this_account}}
            ),
        )
        target_role.add_to_policy(
            iam.PolicyStatement(actions=["aps:RemoteWrite"], resources=[self.workspace.attr_arn])
        )
        # The workspace's data keys come from the metrics key; AMP uses it on the writer's behalf.
        target_role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey"],
                resources=[self.metrics_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"aps.{self.region}.{self.url_suffix}"}},
            )
        )
        source_role.add_to_policy(
            iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[target_role.role_arn])
        )
        self.scraper = aps.CfnScraper(
            self,
            "Scraper",
            alias=f"llm-inference-{config.name}",
            source=aps.CfnScraper.SourceProperty(
                eks_configuration=aps.CfnScraper.EksConfigurationProperty(
                    cluster_arn=cluster.cluster.cluster_arn,
                    # The edge subnets: the model pods' NetworkPolicy admits them, not the pod range.
                    subnet_ids=[subnet.subnet_id for subnet in vpc.isolated_subnets],
                    # The cluster security group admits its members, so the scraper reaches pods.
                    security_group_ids=[cluster.security_group_id],
                )
            ),
            destination=aps.CfnScraper.DestinationProperty(
                amp_configuration=aps.CfnScraper.AmpConfigurationProperty(
                    workspace_arn=self.workspace.attr_arn
                )
            ),
            role_configuration=aps.CfnScraper.RoleConfigurationProperty(
                source_role_arn=source_role.role_arn, target_role_arn=target_role.role_arn
            ),
            scrape_configuration=aps.CfnScraper.ScrapeConfigurationProperty(
                configuration_blob=scrape_config_blob(
                    scrape_interval_seconds=config.observability.scrape_interval_seconds
                )
            ),
        )
        # Both roles (and their policies) must exist before AMP checks it can assume them.
        self.scraper.node.add_dependency(source_role, target_role)
        self.scraper_source_role = source_role
        self.scraper_target_role = target_role
