"""A Lambda function that is a client of the EKS API: in the VPC, traced, and mapped to RBAC.

It reaches the private cluster endpoint over HTTPS with a token from its own role, so it gets:
a security group that only allows HTTPS out, an ingress rule on the cluster's security group,
an EKS access entry that maps its role to one Kubernetes group (RBAC decides the rest), and the
cluster coordinates as environment variables (read on every invocation by lambdas/common).
"""

from __future__ import annotations

from collections.abc import Mapping

import jsii
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks as eks_l1
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from constructs_lib.nag import acknowledge
from constructs_lib.powertools_layer import powertools_layer
from constructs_lib.retention import retention
from contract.functions import CLUSTER_CA_DATA_ENV, CLUSTER_ENDPOINT_ENV, CLUSTER_NAME_ENV

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64  # pure Python: Graviton is cheaper for the same work
HTTPS = 443
VPC_ACCESS_POLICY = "service-role/AWSLambdaVPCAccessExecutionRole"


@jsii.implements(lambda_.IDestination)
class _QueueDestination:
    """An SQS on-failure destination that grants nothing itself.

    ``aws_lambda_destinations.SqsDestination`` grants wildcard KMS actions (``GenerateDataKey*``,
    ``ReEncrypt*``); the function gets the exact ones from ``ClusterClientFunction`` instead.
    """

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(
        self, scope: Construct, fn: lambda_.IFunction, *, type: lambda_.DestinationType
    ) -> lambda_.DestinationConfig:
        return lambda_.DestinationConfig(destination=self._queue.queue_arn)


class ClusterClientFunction(Construct):
    """Exposes ``function``, ``role`` and ``security_group``.

    :param cluster: the EKS cluster the function calls (endpoint, CA and name go into its environment).
    :param vpc: the cluster's VPC; the function runs in its private subnets.
    :param code: the packaged ``lambdas/`` tree (shared by the stage's functions).
    :param handler: e.g. ``lambdas/spot_interruption/handler.handler``.
    :param description: what the function does.
    :param kubernetes_group: the Kubernetes group its access entry maps the role to.
    :param environment: the function's own settings (the cluster's are added here).
    :param environment_key: KMS key of the environment at rest and of ``dead_letter_queue``.
    :param logs_key: KMS key of the stage's log groups.
    :param log_retention_days: retention of the function's log group.
    :param timeout: function timeout.
    :param reserved_concurrency: concurrent executions reserved (and capped).
    :param dead_letter_queue: where failed asynchronous invocations go after ``retry_attempts``.
    :param max_event_age: oldest asynchronous event Lambda still runs or retries.
    :param retry_attempts: Lambda's own retries of a failed asynchronous invocation (0-2).
    :param memory_mib: memory size. Default: 256.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster: eks.ICluster,
        vpc: ec2.IVpc,
        code: lambda_.Code,
        handler: str,
        description: str,
        kubernetes_group: str,
        environment: Mapping[str, str],
        environment_key: kms.IKey,
        logs_key: kms.IKey,
        log_retention_days: int,
        timeout: Duration,
        reserved_concurrency: int,
        dead_letter_queue: sqs.IQueue,
        max_event_age: Duration,
        retry_attempts: int,
        memory_mib: int = 256,
    ) -> None:
        super().__init__(scope, id_)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=description,
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(VPC_ACCESS_POLICY)],
        )
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description=description, allow_all_outbound=False
        )
        # EKS, STS, EC2 and the cluster endpoint are all HTTPS APIs; nothing else may leave.
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS), "HTTPS to the EKS API and AWS APIs"
        )
        ec2.CfnSecurityGroupIngress(
            self,
            "ClusterApiIngress",
            group_id=cluster.cluster_security_group_id,
            source_security_group_id=self.security_group.security_group_id,
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            description=f"Kubernetes API from: {description}",
        )
        log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=logs_key,
            retention=retention(log_retention_days),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=code,
            handler=handler,
            role=self.role,
            layers=[powertools_layer(self, "Powertools", runtime=RUNTIME, architecture=ARCHITECTURE)],
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[self.security_group],
            tracing=lambda_.Tracing.ACTIVE,
            timeout=timeout,
            memory_size=memory_mib,
            reserved_concurrent_executions=reserved_concurrency,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            environment={
                CLUSTER_NAME_ENV: cluster.cluster_name,
                CLUSTER_ENDPOINT_ENV: cluster.cluster_endpoint,
                CLUSTER_CA_DATA_ENV: cluster.cluster_certificate_authority_data,
                **environment,
            },
            environment_encryption=environment_key,
            on_failure=_QueueDestination(dead_letter_queue),
            max_event_age=max_event_age,
            retry_attempts=retry_attempts,
        )
        # Failed asynchronous invocations go to the (KMS-encrypted) dead-letter queue.
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[dead_letter_queue.queue_arn])
        )
        # Decrypt: the environment and SQS's data key; GenerateDataKey: SQS's data key on send.
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[environment_key.key_arn]
            )
        )
        # L1: the aws_eks_v2 AccessEntry L2 cannot set Kubernetes groups, only access policies.
        eks_l1.CfnAccessEntry(
            self,
            "AccessEntry",
            cluster_name=cluster.cluster_name,
            principal_arn=self.role.role_arn,
            type="STANDARD",
            kubernetes_groups=[kubernetes_group],
        )
        acknowledge(
            self.role,
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{VPC_ACCESS_POLICY}]",
            reason="The AWS-managed policy Lambda documents for functions in a VPC: ENI management "
            "(which has no resource-level scoping) and writing its own logs.",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            reason="X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) support no resource "
            "scoping; any other statement of this role is scoped (asserted in tests).",
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            reason="Python 3.13 on purpose: the pinned Powertools layer is published for python313 "
            "and the handlers are tested on it; move with the layer, not ahead of it.",
        )
