"""How the network stack carves the VPC into subnets: refuses a too-small VPC at load time, and
gives the serving charts the load balancer and scraper ranges without a VPC.

The allocation mirrors aws-cdk-lib's `NetworkBuilder` (aws-ec2/lib/network-util.ts, used by
`IpAddresses.cidr`): subnets are placed in order (each configuration across all AZs), each at the
next address aligned to its own size. tests/unit/config/test_subnets.py and
tests/unit/security/test_network_policy.py check it against CDK.

The model pods' NetworkPolicy admits the load balancer and scraper subnets instead of the whole
VPC, which is also the pod range (the VPC CNI gives every pod a VPC address).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class SubnetGroup:
    name: str
    mask: int


PUBLIC = SubnetGroup("Public", 24)  # internet-facing load balancers and NAT gateways
PRIVATE = SubnetGroup("Private", 19)  # nodes and pods
EDGE = SubnetGroup("Edge", 24)  # internal load balancers and the AMP scraper: no nodes, no pods
GROUPS = (PUBLIC, PRIVATE, EDGE)
"""The network stack's subnet configurations, in its order."""

PUBLIC_SUBNET_MASK = PUBLIC.mask
PRIVATE_SUBNET_MASK = PRIVATE.mask
EDGE_SUBNET_MASK = EDGE.mask
SUBNET_MASKS = tuple(group.mask for group in GROUPS)


def carve(vpc_cidr: str, az_count: int) -> list[ipaddress.IPv4Network] | None:
    """The subnets NetworkStack creates in `vpc_cidr` for `az_count` AZs, or None when they do not fit."""
    vpc = ipaddress.IPv4Network(vpc_cidr)
    next_address = int(vpc.network_address)
    end = int(vpc.broadcast_address)
    subnets = []
    for mask in SUBNET_MASKS:
        size = 2 ** (32 - mask)
        for _ in range(az_count):
            start = -(-next_address // size) * size  # the next address aligned to the subnet's size
            if start + size - 1 > end:
                return None
            subnets.append(ipaddress.IPv4Network((start, mask)))
            next_address = start + size
    return subnets


def smallest_fitting_prefix(az_count: int) -> int:
    """The longest VPC prefix (smallest VPC) that holds the subnets for `az_count` AZs."""
    for prefix in range(min(SUBNET_MASKS), 7, -1):
        if carve(f"10.0.0.0/{prefix}", az_count) is not None:
            return prefix
    raise ValueError(f"no IPv4 VPC holds the subnets of {az_count} AZs")


def subnet_cidrs(vpc_cidr: str, zones: int) -> dict[str, list[str]]:
    """{group name: one CIDR per zone}, as aws-cdk's Vpc allocates them."""
    subnets = carve(vpc_cidr, zones)
    if subnets is None:
        raise ValueError(f"{vpc_cidr} has no room for the subnets of {zones} zones")
    return {
        group.name: [str(subnet) for subnet in subnets[index * zones : (index + 1) * zones]]
        for index, group in enumerate(GROUPS)
    }


def load_balancer_source_cidrs(vpc_cidr: str, zones: int, *, internet_facing: bool) -> list[str]:
    """Where connections to the model pods come from: the ALB's subnets and the scraper's."""
    layout = subnet_cidrs(vpc_cidr, zones)
    return (layout[PUBLIC.name] if internet_facing else []) + layout[EDGE.name]
