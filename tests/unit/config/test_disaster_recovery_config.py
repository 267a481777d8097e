"""disaster_recovery: what a stage needs before it can fail over is named in the config errors."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from config import ConfigError, load_stage, parse_stage

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"
SOURCE = "config/prod.yaml"


def prod_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CONFIG_DIR / "prod.yaml").read_text())
    return copy.deepcopy(data)


def rejected(mutate: Callable[[dict[str, Any]], Any], *fragments: str) -> None:
    data = prod_data()
    mutate(data)
    with pytest.raises(ConfigError) as raised:
        parse_stage(data, name="prod", source=SOURCE)
    message = str(raised.value)
    assert message.startswith(SOURCE)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_prod_replicates_to_us_east_2_and_fails_over_with_its_azs_and_certificate() -> None:
    prod = load_stage(CONFIG_DIR / "prod.yaml")
    assert prod.disaster_recovery.replica_region == "us-east-2"
    failover = prod.failover()
    assert failover.region == "us-east-2"
    assert failover.availability_zones == ["us-east-2a", "us-east-2b", "us-east-2c"]
    assert failover.ingress.certificate_arn == prod.disaster_recovery.replica_certificate_arn
    assert failover.disaster_recovery.failover
    assert failover.models == prod.models
    assert failover.cluster == prod.cluster


def test_failover_of_a_failover_is_refused() -> None:
    failover = load_stage(CONFIG_DIR / "prod.yaml").failover()
    with pytest.raises(ValueError, match=r"no disaster_recovery\.replica_region to fail over to"):
        failover.failover()


def test_replica_region_must_differ_from_the_stage_region() -> None:
    rejected(
        lambda d: d["disaster_recovery"].update(replica_region="us-west-2"),
        "disaster_recovery.replica_region us-west-2 is the stage's own region",
    )


def test_replica_needs_a_certificate_in_the_replica_region_when_a_domain_is_served() -> None:
    rejected(
        lambda d: d["disaster_recovery"].pop("replica_certificate_arn"),
        "disaster_recovery.replica_certificate_arn is required",
        "llm.example.com",
        "us-east-2",
    )
    rejected(
        lambda d: d["disaster_recovery"].update(replica_certificate_arn=d["ingress"]["certificate_arn"]),
        "is not an ACM certificate of account 333333333333 in us-east-2",
    )


def test_replica_azs_must_be_in_the_replica_region_and_as_many_as_the_stage_has() -> None:
    rejected(
        lambda d: d["disaster_recovery"].update(replica_availability_zones=["us-east-2a", "us-east-2b"]),
        "must list 3 AZs of us-east-2",
        "availability-zones:account=333333333333:region=us-east-2",
    )
    rejected(
        lambda d: d["disaster_recovery"].update(
            replica_availability_zones=["us-east-2a", "us-east-2b", "us-east-1c"]
        ),
        "['us-east-1c'] are not in replica_region us-east-2",
    )


def test_missing_or_short_gpu_quota_names_the_quota_and_the_vcpus_needed() -> None:
    rejected(
        lambda d: d["disaster_recovery"]["replica_vcpu_quotas"].pop("L-3819A6DF"),
        "replica_vcpu_quotas.L-3819A6DF",
        "704 vCPUs",
        "All G and VT Spot Instance Requests",
        "configured: None",
    )
    rejected(
        lambda d: d["disaster_recovery"]["replica_vcpu_quotas"].update({"L-DB2E81BA": 96}),
        "192 vCPUs of quota L-DB2E81BA (Running On-Demand G and VT instances) in us-east-2, configured: 96",
    )
    rejected(
        lambda d: d["disaster_recovery"]["replica_vcpu_quotas"].update({"L-XXXXXXX": 1}),
        "unknown quota codes ['L-XXXXXXX']",
    )


def test_replica_settings_without_a_replica_region_and_failover_in_a_file_are_refused() -> None:
    rejected(
        lambda d: d["disaster_recovery"].pop("replica_region"),
        "replica settings are given but replica_region is not",
    )
    rejected(
        lambda d: d["disaster_recovery"].update(failover=True),
        "do not set failover in a stage file",
    )
