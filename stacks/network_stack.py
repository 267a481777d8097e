"""The stage's VPC: public and private subnets across the configured AZs, NAT, endpoints, flow logs."""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from config import StageConfig
from config.subnets import PRIVATE_SUBNET_MASK, PUBLIC_SUBNET_MASK
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
"""Services private nodes call on boot and at run time; endpoints keep that traffic off the NAT."""


class NetworkStack(Stack):
    """Exposes ``vpc`` and ``logs_key`` (the stage's CloudWatch Logs key)."""

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
                    name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=PUBLIC_SUBNET_MASK
                ),
                ec2.SubnetConfiguration(
                    name="Private",
                    subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                    cidr_mask=PRIVATE_SUBNET_MASK,
                ),
            ],
        )
        # The AWS Load Balancer Controller finds subnets by these tags.
        for subnet in self.vpc.public_subnets:
            Tags.of(subnet).add("kubernetes.io/role/elb", "1")
        for subnet in self.vpc.private_subnets:
            Tags.of(subnet).add("kubernetes.io/role/internal-elb", "1")

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
            self.vpc.add_interface_endpoint(
                name,
                service=service,
                private_dns_enabled=True,
                subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            )
        acknowledge(
            self.vpc,
            "AwsSolutions-EC23",
            reason="Interface endpoint security groups allow only HTTPS from the VPC CIDR; the rule "
            "cannot read the CIDR because it is a reference to the VPC resource.",
        )
