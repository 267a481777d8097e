"""Metrics, alerts, logs and traces of a stage, around an Amazon Managed Service for Prometheus workspace."""

from __future__ import annotations

from typing import Any, cast

import yaml
from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_aps as aps
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks as eks_l1
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_kms as kms
from constructs import Construct

from config import StageConfig
from observability.alertmanager import Topics, alertmanager_definition
from observability.dashboard import grafana_dashboard
from observability.rules import alerting_rules, recording_rules
from observability.scrape_config import scrape_config_blob
from observability.slo import slo_recording_rules
from stacks import alert_routing

APS_PRINCIPAL = "aps.amazonaws.com"
CLOUDWATCH_PRINCIPAL = "cloudwatch.amazonaws.com"
SCRAPER_USERNAME = "aps-collector-user"
"""The Kubernetes user name AMP's managed scraper documentation binds its RBAC role to."""


def scraper_rbac(username: str = SCRAPER_USERNAME) -> list[dict[str, Any]]:
    """Read-only discovery and metrics access for the managed scraper (AMP user guide)."""
    read = ["get", "list", "watch"]
    rbac_group = "rbac.authorization.k8s.io"
    return [
        {
            "apiVersion": f"{rbac_group}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "aps-collector-role"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": [
                        "nodes",
                        "nodes/proxy",
                        "nodes/metrics",
                        "services",
                        "endpoints",
                        "pods",
                        "configmaps",
                    ],
                    "verbs": read,
                },
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
                {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": read},
                {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
            ],
        },
        {
            "apiVersion": f"{rbac_group}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "aps-collector-user-role-binding"},
            "subjects": [{"kind": "User", "name": username, "apiGroup": rbac_group}],
            "roleRef": {
                "kind": "ClusterRole",
                "name": "aps-collector-role",
                "apiGroup": "rbac.authorization.k8s.io",
            },
        },
    ]


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
        cluster: eks.Cluster,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.metrics_key = kms.Key(
            self,
            "MetricsKey",
            description=f"Managed Prometheus encryption for stage {config.name}",
            enable_key_rotation=True,
            pending_window=Duration.days(30),
            removal_policy=RemovalPolicy.RETAIN,
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
            )
        }
        self._scraper(config, vpc=vpc, cluster=cluster)
        self.grafana_dashboard = grafana_dashboard(config)

    def _scraper(self, config: StageConfig, *, vpc: ec2.IVpc, cluster: eks.Cluster) -> None:
        """The AMP managed scraper, its EKS access entry and the RBAC role that entry maps to."""
        self.scraper = aps.CfnScraper(
            self,
            "Scraper",
            alias=f"llm-inference-{config.name}",
            source=aps.CfnScraper.SourceProperty(
                eks_configuration=aps.CfnScraper.EksConfigurationProperty(
                    cluster_arn=cluster.cluster_arn,
                    subnet_ids=[subnet.subnet_id for subnet in vpc.private_subnets],
                    # The cluster security group admits its members, so the scraper reaches pods.
                    security_group_ids=[cluster.cluster_security_group_id],
                )
            ),
            destination=aps.CfnScraper.DestinationProperty(
                amp_configuration=aps.CfnScraper.AmpConfigurationProperty(
                    workspace_arn=self.workspace.attr_arn
                )
            ),
            scrape_configuration=aps.CfnScraper.ScrapeConfigurationProperty(
                configuration_blob=scrape_config_blob(
                    scrape_interval_seconds=config.observability.scrape_interval_seconds
                )
            ),
        )
        self.scraper_access = eks_l1.CfnAccessEntry(
            self,
            "ScraperAccess",
            cluster_name=cluster.cluster_name,
            principal_arn=self.scraper.attr_role_arn,
            username=SCRAPER_USERNAME,
            type="STANDARD",
        )
        self.scraper_rbac = eks.KubernetesManifest(
            self,
            "ScraperRbac",
            # jsii's generated ICluster protocol lists a member the concrete class lacks in stubs.
            cluster=cast(eks.ICluster, cluster),
            manifest=scraper_rbac(),
            overwrite=True,
        )
