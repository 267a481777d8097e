"""A dated price table (USD, us-east-1, Linux On-Demand) with its sources.

Prices are per hour unless named otherwise. us-west-2 lists the same On-Demand prices for these
instance types; other regions differ, so the report prints the region the table is for.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_AS_OF = "2026-06"
PRICE_REGION = "us-east-1"
EC2_SOURCE = (
    "AWS EC2 On-Demand pricing page (aws.amazon.com/ec2/pricing/on-demand/), Linux, us-east-1, as listed "
    f"{PRICES_AS_OF}; g5.xlarge $1.006 cross-checked against a June 2026 published listing"
)

ON_DEMAND_HOURLY: dict[str, float] = {
    "g5.xlarge": 1.006, "g5.2xlarge": 1.212, "g5.4xlarge": 1.624, "g5.8xlarge": 2.448,
    "g5.16xlarge": 4.096, "g5.12xlarge": 5.672, "g5.24xlarge": 8.144, "g5.48xlarge": 16.288,
    "g6.xlarge": 0.8048, "g6.2xlarge": 0.9776, "g6.4xlarge": 1.3232, "g6.8xlarge": 2.0144,
    "g6.16xlarge": 3.3968, "g6.12xlarge": 4.6016, "g6.24xlarge": 6.6752, "g6.48xlarge": 13.3504,
    "g6e.xlarge": 1.861, "g6e.2xlarge": 2.24208, "g6e.4xlarge": 3.00424, "g6e.8xlarge": 4.52856,
    "g6e.16xlarge": 7.57719, "g6e.12xlarge": 10.49264, "g6e.24xlarge": 15.06559, "g6e.48xlarge": 30.13118,
    # p4d/p4de/p5: after AWS's June 2025 price reduction for P4/P5 (estimate of the new list price).
    "p4d.24xlarge": 21.96, "p4de.24xlarge": 27.45, "p5.48xlarge": 55.04,
    "m7i.large": 0.1008, "m7i.xlarge": 0.2016, "m7i.2xlarge": 0.4032,
    "m6i.large": 0.096, "m6i.xlarge": 0.192, "m5.large": 0.096, "m5.xlarge": 0.192,
}  # fmt: skip

# Spot prices move every few minutes per AZ; the planner uses one fraction of On-Demand.
SPOT_FRACTION = 0.40
SPOT_SOURCE = (
    "estimate: Spot at 40 % of On-Demand for g5/g6/g6e (AWS Spot pricing history typically shows 55-70 % "
    "savings for these families; AWS states 'up to 90 %'); check the Spot Instance Advisor for your region"
)


@dataclass(frozen=True)
class FixedPrices:
    eks_cluster_hourly: float = 0.10  # aws.amazon.com/eks/pricing (standard support)
    nat_gateway_hourly: float = 0.045  # aws.amazon.com/vpc/pricing
    nat_per_gb: float = 0.045
    alb_hourly: float = 0.0225  # aws.amazon.com/elasticloadbalancing/pricing
    alb_lcu_hourly: float = 0.008
    amp_per_10m_samples: float = 0.90  # aws.amazon.com/prometheus/pricing, first 2 billion samples
    amp_storage_gb_month: float = 0.03
    hours_per_month: float = 730.0


FIXED = FixedPrices()
FIXED_SOURCE = (
    "AWS pricing pages for EKS, VPC (NAT gateway), Elastic Load Balancing and Amazon Managed Service for "
    f"Prometheus, us-east-1, as listed {PRICES_AS_OF}"
)


class PriceError(KeyError):
    """An instance type missing from the price table."""


def hourly_price(instance_type: str, spot: bool) -> float:
    try:
        on_demand = ON_DEMAND_HOURLY[instance_type]
    except KeyError:
        raise PriceError(
            f"no price for {instance_type!r}; add it to planner.prices.ON_DEMAND_HOURLY with its source"
        ) from None
    return on_demand * SPOT_FRACTION if spot else on_demand
