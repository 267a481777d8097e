"""The VPC size rule agrees with how aws-cdk-lib really carves the network stack's subnets."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2

from config.subnets import (
    EDGE_SUBNET_MASK,
    PRIVATE_SUBNET_MASK,
    PUBLIC_SUBNET_MASK,
    carve,
    smallest_fitting_prefix,
)

AZS = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"]


def cdk_subnets(vpc_cidr: str, az_count: int) -> list[str] | None:
    """The subnet CIDRs aws-cdk-lib allocates, or None when it refuses the VPC."""
    stack = cdk.Stack(cdk.App(), "S", env=cdk.Environment(account="111111111111", region="us-east-1"))
    try:
        vpc = ec2.Vpc(
            stack,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(vpc_cidr),
            availability_zones=AZS[:az_count],
            nat_gateways=1,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=PUBLIC_SUBNET_MASK
                ),
                ec2.SubnetConfiguration(
                    name="Private",
                    subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                    cidr_mask=PRIVATE_SUBNET_MASK,
                ),
                ec2.SubnetConfiguration(
                    name="Edge", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=EDGE_SUBNET_MASK
                ),
            ],
        )
    except RuntimeError as error:  # jsii raises the CDK's validation error as RuntimeError
        if "exceeds remaining space" not in str(error):
            raise
        return None
    return [
        subnet.ipv4_cidr_block
        for subnet in [*vpc.public_subnets, *vpc.private_subnets, *vpc.isolated_subnets]
    ]


@pytest.mark.parametrize(
    ("vpc_cidr", "az_count"),
    [("10.0.0.0/16", 3), ("10.0.0.0/17", 3), ("10.0.0.0/17", 4), ("10.0.0.0/18", 2), ("10.0.128.0/17", 2)],
)
def test_carving_matches_the_cdk(vpc_cidr: str, az_count: int) -> None:
    ours = carve(vpc_cidr, az_count)
    assert cdk_subnets(vpc_cidr, az_count) == (None if ours is None else [str(subnet) for subnet in ours])


def test_the_smallest_vpc_for_two_to_four_azs() -> None:
    # The edge /24s come after the private /19s: three AZs need a /16 (two still fit in a /17).
    assert [smallest_fitting_prefix(count) for count in (2, 3, 4)] == [17, 16, 16]
