"""The stage's VPC: public and private subnets across the configured AZs, NAT, endpoints, flow logs."""

from __future__ import annotations

from typing import Any

from aws_cdk import Fn, RemovalPolicy, Stack, Tags, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from config import StageConfig
from config.subnets import EDGE, PRIVATE, PUBLIC
from constructs_lib.logs_key import LogsKey
from constructs_lib.nag import acknowledge
from constructs_lib.retention import retention
from stacks import image_registries

INTERFACE_ENDPOINTS = {
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Ec2": ec2.InterfaceVpcEndpointAwsService.EC2,
}
ENDPOINT_ACTIONS = {"EcrApi": "ecr:*", "EcrDocker": "ecr:*", "Sts": "sts:*", "Logs": "logs:*", "Ec2": "ec2:*"}
"""What each interface endpoint carries (its endpoint policy allows that service only)."""
"""Services private nodes call on boot and at run time; endpoints keep that traffic off the NAT."""

# What may pass the S3 gateway endpoint besides this account's own buckets (issue #14 item 12). Every
# same-region S3 request from the VPC takes the endpoint (its prefix-list route outranks the NAT
# route), so a bucket missing here fails with 403 AccessDenied; other regions go out through the NAT.
# Image-layer buckets come from the registry table (stacks/image_registries.py, each entry with its
# source); tests/unit/security/test_image_registries.py fails on an image from a registry not in it.
AL2023_REPO_BUCKET = "al2023-repos-{region}-de612dc2"
"""The AL2023 package repositories (AWS data perimeter examples). Nothing here runs dnf; kept so a
package fetch on a node cannot stop it joining, which no test without an account could show."""
CFN_RESPONSE_BUCKET = "cloudformation-custom-resource-response-{region_without_dashes}"
"""The kubectl provider's framework Lambda runs in the VPC and PUTs each custom resource's result to
a presigned URL in this bucket (CloudFormation user guide, VPC endpoints); without it deploys hang."""
OWN_BUCKET_READS = ("s3:GetObject*", "s3:GetBucket*", "s3:List*")
"""Reads only: model weights (vLLM's streamer), the smoke check's source and Helm chart assets in the CDK
assets bucket. Nothing in the VPC writes to this account's buckets."""


class NetworkStack(Stack):
    """Exposes ``vpc``, ``edge_subnets`` (internal load balancers and the AMP scraper) and
    ``logs_key`` (the stage's CloudWatch Logs key)."""

    def __init__(self, scope: Construct, id_: str, *, config: StageConfig, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        self.logs_key = LogsKey(
            self, "LogsKey", description=f"CloudWatch Logs encryption for stage {config.name}"
        ).key

        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(config.network.vpc_cidr),
            availability_zones=list(config.availability_zones),
            nat_gateways=config.network.nat_gateways,
            restrict_default_security_group=True,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name=PUBLIC.name, subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=PUBLIC.mask
                ),
                ec2.SubnetConfiguration(
                    name=PRIVATE.name, subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=PRIVATE.mask
                ),
                # Isolated: an internal ALB and the scraper need no route out, and selections of
                # PRIVATE_WITH_EGRESS subnets (nodes, Lambdas, endpoints) never pick these.
                ec2.SubnetConfiguration(
                    name=EDGE.name, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=EDGE.mask
                ),
            ],
        )
        self.edge_subnets = self.vpc.isolated_subnets
        # The AWS Load Balancer Controller finds subnets by these tags: internal load balancers go
        # to the edge subnets, so pods see them as a range apart from the pod subnets.
        for subnet in self.vpc.public_subnets:
            Tags.of(subnet).add("kubernetes.io/role/elb", "1")
        for subnet in self.edge_subnets:
            Tags.of(subnet).add("kubernetes.io/role/internal-elb", "1")
        # The EKS cluster construct tags the private subnets too; a removal outranks its addition
        # (priority 200 against 100), or the controller could pick a pod subnet per zone.
        for subnet in self.vpc.private_subnets:
            Tags.of(subnet).remove("kubernetes.io/role/internal-elb")

        flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            encryption_key=self.logs_key,
            retention=retention(config.network.flow_logs_retention_days),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

        s3_endpoint = self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        for statement in s3_endpoint_statements(
            account=self.account,
            region=self.region,
            partition=self.partition,
            model_source_buckets=model_source_buckets(config),
        ):
            s3_endpoint.add_to_policy(statement)
        for name, service in INTERFACE_ENDPOINTS.items():
            endpoint = self.vpc.add_interface_endpoint(
                name,
                service=service,
                private_dns_enabled=True,
                subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            )
            # Only this account's principals: stolen credentials of another account cannot use
            # the endpoints to reach out (their resources, e.g. AWS's add-on images, stay reachable).
            endpoint.add_to_policy(
                iam.PolicyStatement(
                    sid="OnlyThisAccountsPrincipals",
                    principals=[iam.AnyPrincipal()],
                    actions=[ENDPOINT_ACTIONS[name]],
                    resources=["*"],
                    conditions={"StringEquals": {"aws:PrincipalAccount": self.account}},
                )
            )
        acknowledge(
            self.vpc,
            "AwsSolutions-EC23",
            reason="Interface endpoint security groups allow only HTTPS from the VPC CIDR; the rule "
            "cannot read the CIDR because it is a reference to the VPC resource.",
        )


def model_source_buckets(config: StageConfig) -> list[str]:
    """Buckets named by `s3://` model sources (weights or draft models) outside the stage's own bucket."""
    sources = []
    for model in config.models:
        for version in model.versions:
            sources.append(version.source)
            if version.engine.speculative is not None and version.engine.speculative.draft_model:
                sources.append(version.engine.speculative.draft_model)
    return sorted(
        {source.removeprefix("s3://").split("/", 1)[0] for source in sources if source.startswith("s3://")}
    )


def s3_endpoint_statements(
    *, account: str, region: str, partition: str, model_source_buckets: list[str]
) -> list[iam.PolicyStatement]:
    """The S3 gateway endpoint's policy. Gateway endpoint policies name the principal `*`; what a caller
    may do is still its role's business. The endpoint only bounds where S3 traffic may go: this
    account's buckets (read-only), the public buckets images and packages
    come from (read-only), and CloudFormation's response bucket (write, via its presigned URLs)."""

    def bucket(pattern: str) -> str:
        name = pattern.format(region=region, region_without_dashes=_without_dashes(region))
        return f"arn:{partition}:s3:::{name}/*"

    statements = [
        iam.PolicyStatement(
            sid="OwnAccountBucketsReadOnly",
            principals=[iam.AnyPrincipal()],
            actions=list(OWN_BUCKET_READS),
            resources=["*"],
            # The bucket owner, not the caller: a service's presigned URL is signed by its own
            # principal, and foreign principals are already kept out by the buckets' policies.
            conditions={"StringEquals": {"aws:ResourceAccount": account}},
        ),
        iam.PolicyStatement(
            sid="PublicImageLayersAndPackages",
            principals=[iam.AnyPrincipal()],
            actions=["s3:GetObject"],
            resources=[
                bucket(pattern) for pattern in (*image_registries.s3_bucket_patterns(), AL2023_REPO_BUCKET)
            ],
        ),
        iam.PolicyStatement(
            sid="CloudFormationCustomResourceResponses",
            principals=[iam.AnyPrincipal()],
            actions=["s3:PutObject"],
            resources=[bucket(CFN_RESPONSE_BUCKET)],
        ),
    ]
    if model_source_buckets:
        # A configured `s3://` source may live in another account; its own bucket policy decides.
        statements.append(
            iam.PolicyStatement(
                sid="ConfiguredModelSourcesReadOnly",
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject", "s3:ListBucket"],
                resources=[
                    arn
                    for name in model_source_buckets
                    for arn in (f"arn:{partition}:s3:::{name}", f"arn:{partition}:s3:::{name}/*")
                ],
                conditions={"StringEquals": {"aws:PrincipalAccount": account}},
            )
        )
    return statements


def _without_dashes(region: str) -> str:
    """`us-west-2` -> `uswest2`; a deploy-time region (env-agnostic stage) through Fn::Split/Join."""
    if Token.is_unresolved(region):
        return Fn.join("", Fn.split("-", region))
    return region.replace("-", "")
