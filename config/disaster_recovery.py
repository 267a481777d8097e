"""Disaster recovery of a stage: the second region its weights and secrets are copied to, and what a
stage needs there before it can be brought up (AZs, certificate, GPU quotas).

The EC2 vCPU quota codes are those of the Service Quotas console (service code `ec2`); the Spot quota
names are from https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-spot-limits.html.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from config.base import Strict, duplicates
from config.catalog import GPU_INSTANCE_TYPES
from config.cluster import CapacityType

if TYPE_CHECKING:
    from config.stage import StageConfig

REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
ACM_ARN = re.compile(r"^arn:aws:acm:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):certificate/[\w-]+$")
MAX_BUCKET_NAME = 63


@dataclass(frozen=True)
class VcpuQuota:
    code: str
    name: str


# EC2 counts running GPU instances in vCPUs per instance-family class and purchase option. New
# accounts and newly used regions often start at 0 for the G and P classes.
VCPU_QUOTAS: dict[tuple[str, CapacityType], VcpuQuota] = {
    ("g", CapacityType.ON_DEMAND): VcpuQuota("L-DB2E81BA", "Running On-Demand G and VT instances"),
    ("g", CapacityType.SPOT): VcpuQuota("L-3819A6DF", "All G and VT Spot Instance Requests"),
    ("p", CapacityType.ON_DEMAND): VcpuQuota("L-417A185B", "Running On-Demand P instances"),
    ("p", CapacityType.SPOT): VcpuQuota("L-7212CCBC", "All P Spot Instance Requests"),
}


class DisasterRecoveryConfig(Strict):
    """Optional: empty means the stage lives in one region only."""

    replica_region: str | None = Field(
        default=None, description="Region the model bucket and secrets are replicated to."
    )
    replica_availability_zones: list[str] = Field(
        default_factory=list, description="AZs of the failover stage's VPC (committed to cdk.context.json)."
    )
    replica_certificate_arn: str | None = Field(
        default=None,
        description="ACM certificate for ingress.domain in the replica region (ACM is regional).",
    )
    replica_vcpu_quotas: dict[str, int] = Field(
        default_factory=dict,
        description="EC2 vCPU quotas granted in the replica region, by quota code (e.g. L-DB2E81BA).",
    )
    failover: bool = Field(
        default=False,
        description="Set by StageConfig.failover(): this config describes the stage in its replica region.",
    )

    @field_validator("replica_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not REGION.match(value):
            raise ValueError(f"replica_region {value!r} is not an AWS region name such as us-east-2")
        return value

    @field_validator("replica_availability_zones")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if duplicates(value):
            raise ValueError(f"duplicate availability zones {duplicates(value)}")
        return value

    @field_validator("replica_vcpu_quotas")
    @classmethod
    def _known_codes(cls, value: dict[str, int]) -> dict[str, int]:
        known = sorted(quota.code for quota in VCPU_QUOTAS.values())
        unknown = [code for code in value if code not in known]
        if unknown:
            raise ValueError(f"unknown quota codes {unknown}; allowed: {known}")
        return value

    @property
    def enabled(self) -> bool:
        return self.replica_region is not None


def replica_bucket_name(*, stage: str, account: str, region: str) -> str:
    """Physical name of the replica model bucket. Fixed by stage, account and region because the source
    bucket's replication rule (another region, so no CloudFormation reference) must name it."""
    return f"llm-inference-{stage}-models-{account}-{region}"


def replica_key_alias(stage: str) -> str:
    """Alias of the replica region's model-bucket key; replication and the failover stage find it by this."""
    return f"alias/llm-inference-{stage}-models-replica"


def replica_secrets_key_alias(stage: str) -> str:
    """Alias of the key that encrypts the stage's secret replicas in the replica region."""
    return f"alias/llm-inference-{stage}-secrets-replica"


def needed_vcpus(stage: StageConfig) -> dict[VcpuQuota, int]:
    """vCPUs the GPU node groups can reach at max_size (largest type of each group), per EC2 quota."""
    needed: dict[VcpuQuota, int] = {}
    for group in stage.cluster.gpu_node_groups:
        family_class = group.instance.family[0]
        quota = VCPU_QUOTAS[(family_class, group.capacity_type)]
        vcpus = max(GPU_INSTANCE_TYPES[name].vcpus for name in group.instance_types)
        needed[quota] = needed.get(quota, 0) + vcpus * group.max_size
    return needed


def check_disaster_recovery(stage: StageConfig) -> None:
    """What a stage needs before it can fail over; each error names the field and what is required."""
    dr = stage.disaster_recovery
    if dr.replica_region is None:
        if (
            dr.replica_availability_zones
            or dr.replica_certificate_arn
            or dr.replica_vcpu_quotas
            or dr.failover
        ):
            raise ValueError(
                "disaster_recovery: replica settings are given but replica_region is not; set "
                "disaster_recovery.replica_region or remove the other disaster_recovery fields"
            )
        return
    if stage.account is None or stage.region is None:
        raise ValueError(
            "disaster_recovery.replica_region needs the stage's account and region (the replica bucket "
            "is named after both); set account and region"
        )
    home = stage.region
    if dr.failover:
        if stage.region != dr.replica_region:
            raise ValueError(
                f"disaster_recovery.failover is set but region {stage.region} is not replica_region "
                f"{dr.replica_region}; do not set failover in a stage file, use StageConfig.failover()"
            )
        return
    if dr.replica_region == home:
        raise ValueError(
            f"disaster_recovery.replica_region {dr.replica_region} is the stage's own region; allowed: "
            "another region"
        )
    _check_replica_azs(stage, dr.replica_region)
    _check_certificate(stage, dr.replica_region)
    _check_quotas(stage, dr.replica_region)
    name = replica_bucket_name(stage=stage.name, account=stage.account, region=dr.replica_region)
    if len(name) > MAX_BUCKET_NAME:
        raise ValueError(
            f"disaster_recovery: replica bucket name {name!r} has {len(name)} characters; allowed: at most "
            f"{MAX_BUCKET_NAME} (use a shorter stage file name)"
        )


def _check_replica_azs(stage: StageConfig, region: str) -> None:
    azs = stage.disaster_recovery.replica_availability_zones
    wanted = len(stage.availability_zones)
    if len(azs) != wanted:
        raise ValueError(
            f"disaster_recovery.replica_availability_zones {azs} must list {wanted} AZs of {region} (as "
            f"many as availability_zones), each also committed to cdk.context.json as "
            f"availability-zones:account={stage.account}:region={region}"
        )
    foreign = [az for az in azs if not az.startswith(region)]
    if foreign:
        raise ValueError(
            f"disaster_recovery.replica_availability_zones {foreign} are not in replica_region {region}"
        )


def _check_certificate(stage: StageConfig, region: str) -> None:
    arn = stage.disaster_recovery.replica_certificate_arn
    if stage.ingress.domain is None:
        if arn is not None:
            raise ValueError(
                "disaster_recovery.replica_certificate_arn is set but ingress.domain is not; remove it"
            )
        return
    if arn is None:
        raise ValueError(
            f"disaster_recovery.replica_certificate_arn is required: ingress.domain {stage.ingress.domain} "
            f"needs an ACM certificate in {region} (ACM certificates are regional; request or import one "
            "there for the same names)"
        )
    match = ACM_ARN.match(arn)
    if match is None or match["region"] != region or match["account"] != stage.account:
        raise ValueError(
            f"disaster_recovery.replica_certificate_arn {arn!r} is not an ACM certificate of account "
            f"{stage.account} in {region}; allowed: arn:aws:acm:{region}:{stage.account}:certificate/<id>"
        )


def _check_quotas(stage: StageConfig, region: str) -> None:
    granted = stage.disaster_recovery.replica_vcpu_quotas
    for quota, vcpus in sorted(needed_vcpus(stage).items(), key=lambda item: item[0].code):
        have = granted.get(quota.code)
        if have is None or have < vcpus:
            raise ValueError(
                f"disaster_recovery.replica_vcpu_quotas.{quota.code}: the GPU node groups at max_size need "
                f"{vcpus} vCPUs of quota {quota.code} ({quota.name}) in {region}, configured: {have}; "
                "request the increase in Service Quotas, then record the granted value here"
            )
