"""The VPC's subnet layout, derived from the VPC CIDR and the zone count (nothing to configure).

The network stack builds its subnets from these groups and the serving charts (also when exported
for GitOps, without a VPC) derive the load balancer and scraper ranges from the same function, so
the model pods' NetworkPolicy can admit those ranges instead of the whole VPC, which is also the
pod range. tests/unit/security/test_network_policy.py checks the result against aws-cdk's own
allocation (sequential, each block aligned to its size, groups in this order).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class SubnetGroup:
    name: str
    mask: int


PUBLIC = SubnetGroup("Public", 24)  # internet-facing load balancers and NAT gateways
PRIVATE = SubnetGroup("Private", 19)  # nodes and pods: the VPC CNI gives every pod a VPC address
EDGE = SubnetGroup("Edge", 24)  # internal load balancers and the AMP scraper: no nodes, no pods
GROUPS = (PUBLIC, PRIVATE, EDGE)


def subnet_cidrs(vpc_cidr: str, zones: int) -> dict[str, list[str]]:
    """{group name: one CIDR per zone}, allocated as aws-cdk's Vpc allocates them."""
    vpc = ipaddress.IPv4Network(vpc_cidr)
    next_free = int(vpc.network_address)
    layout: dict[str, list[str]] = {}
    for group in GROUPS:
        size = 2 ** (32 - group.mask)
        cidrs = []
        for _ in range(zones):
            start = -(-next_free // size) * size  # round up to the block's alignment
            block = ipaddress.IPv4Network((start, group.mask))
            if not block.subnet_of(vpc):
                raise ValueError(f"{vpc_cidr} has no room for {zones} /{group.mask} {group.name} subnets")
            cidrs.append(str(block))
            next_free = start + size
        layout[group.name] = cidrs
    return layout


def load_balancer_source_cidrs(vpc_cidr: str, zones: int, *, internet_facing: bool) -> list[str]:
    """Where connections to the model pods come from: the ALB's subnets and the scraper's."""
    layout = subnet_cidrs(vpc_cidr, zones)
    return (layout[PUBLIC.name] if internet_facing else []) + layout[EDGE.name]
