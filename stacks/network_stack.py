"""The stage's VPC: public and private subnets across the configured AZs, NAT, endpoints, flow logs."""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from config import StageConfig
from config.subnets import EDGE, PRIVATE, PUBLIC
from constructs_lib.logs_key import LogsKey
from constructs_lib.nag import acknowledge
from constructs_lib.retention import retention

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

        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
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
