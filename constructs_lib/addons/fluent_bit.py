"""AWS for Fluent Bit: every container's stdout/stderr to one KMS-encrypted CloudWatch Logs group."""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from constructs_lib.addons.helm import TOLERATE_EVERYTHING, HelmAddon, HelmSource
from constructs_lib.nag import acknowledge
from constructs_lib.retention import retention
from contract.kubernetes import LOGGING_NAMESPACE

SERVICE_ACCOUNT = "aws-for-fluent-bit"
# Chart 0.2.0 (eks-charts commit 2942cdc) ships AWS for Fluent Bit 3.2.1, built on Fluent Bit 4.2.2,
# whose AWS credential chain reads EKS Pod Identity (fluent/fluent-bit#10114, aws-for-fluent-bit
# 2.32.5 onwards). Chart 0.1.35 shipped 2.32.2: without Pod Identity it fell back to the node role,
# which IMDSv2 with hop limit 1 keeps out of pods, so no log ever left the nodes.
IMAGE_TAG = "3.2.1"
SOURCE = HelmSource(
    chart="aws-for-fluent-bit",
    repository="https://aws.github.io/eks-charts",
    version="0.2.0",
    namespace=LOGGING_NAMESPACE,
    release="aws-for-fluent-bit",
)


def values(*, region: str, log_group_name: str) -> dict[str, Any]:
    return {
        "image": {"tag": IMAGE_TAG},  # the chart's default, pinned here so a chart bump shows it
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "cloudWatchLogs": {
            "enabled": True,
            "region": region,
            "logGroupName": log_group_name,
            "logStreamPrefix": "node-",
            # The group exists (with its key and retention); Fluent Bit must not create another.
            "autoCreateGroup": False,
        },
        "cloudWatch": {"enabled": False},  # the legacy Go plugin; cloudWatchLogs replaces it
        "firehose": {"enabled": False},
        "kinesis": {"enabled": False},
        "elasticsearch": {"enabled": False},
        "tolerations": TOLERATE_EVERYTHING,
        "priorityClassName": "system-node-critical",
    }


class FluentBit(HelmAddon):
    """Exposes ``log_group``, ``chart`` and ``identity``.

    :param logs_key: the stage's CloudWatch Logs key (its policy already admits CloudWatch Logs).
    :param retention_days: a retention CloudWatch Logs accepts.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster: eks.ICluster,
        logs_key: kms.IKey,
        retention_days: int,
    ) -> None:
        super().__init__(scope, id_, source=SOURCE)
        stack = Stack.of(self)
        self.log_group = logs.LogGroup(
            self,
            "ContainerLogs",
            encryption_key=logs_key,
            retention=retention(retention_days),
            removal_policy=RemovalPolicy.RETAIN,
        )
        identity = self._pod_identity(
            cluster_name=cluster.cluster_name,
            service_account=SERVICE_ACCOUNT,
            statements=[
                iam.PolicyStatement(
                    sid="WriteContainerLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    resources=[self.log_group.log_group_arn, f"{self.log_group.log_group_arn}:log-stream:*"],
                )
            ],
        )
        acknowledge(
            identity.role,
            f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(_cfn(self.log_group))}.Arn>:log-stream:*]",
            reason="One stream per node is created at run time; the statement is limited to this log group.",
        )
        self._install(
            cluster=cluster,
            values=values(region=stack.region, log_group_name=self.log_group.log_group_name),
        )


def _cfn(log_group: logs.LogGroup) -> logs.CfnLogGroup:
    child = log_group.node.default_child
    assert isinstance(child, logs.CfnLogGroup)
    return child
