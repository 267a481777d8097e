"""How the network stack carves the VPC into subnets, so a too-small VPC is refused at load time.

The allocation mirrors aws-cdk-lib's `NetworkBuilder` (aws-ec2/lib/network-util.ts, used by
`IpAddresses.cidr`): subnets are placed in order (each configuration across all AZs), each at the
next address aligned to its own size. tests/unit/config/test_subnets.py checks it against CDK.
"""

from __future__ import annotations

import ipaddress

PUBLIC_SUBNET_MASK = 24
PRIVATE_SUBNET_MASK = 19  # room for pods: the VPC CNI gives every pod a VPC address
SUBNET_MASKS = (PUBLIC_SUBNET_MASK, PRIVATE_SUBNET_MASK)
"""The network stack's subnet configurations, in its order."""


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
