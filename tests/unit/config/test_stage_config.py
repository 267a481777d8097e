"""Every stage file loads, and each kind of bad configuration fails with a message a human can act on."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from config import ConfigError, load_stage, load_stages, parse_stage
from config.cluster import CapacityType

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"
SOURCE = "config/dev.yaml"


def dev_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CONFIG_DIR / "dev.yaml").read_text())
    return copy.deepcopy(data)


def error_for(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_stage(data, name="dev", source=SOURCE)
    return str(raised.value)


def assert_rejected_naming(mutate: Callable[[dict[str, Any]], Any], expected: list[str]) -> None:
    """dev.yaml changed by `mutate` fails with a message that starts with the file and has every fragment."""
    data = dev_data()
    mutate(data)
    message = error_for(data)
    assert message.startswith(SOURCE)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_every_stage_loads_in_order() -> None:
    stages = load_stages()
    assert list(stages) == ["dev", "staging", "prod"]
    assert all(config.name == name for name, config in stages.items())


def test_dev_is_small_and_cheap() -> None:
    dev = load_stage(CONFIG_DIR / "dev.yaml")
    assert dev.network.nat_gateways == 1
    assert all(group.capacity_type is CapacityType.SPOT for group in dev.cluster.gpu_node_groups)
    assert all(group.min_size == 0 for group in dev.cluster.gpu_node_groups)


def test_prod_is_highly_available() -> None:
    prod = load_stage(CONFIG_DIR / "prod.yaml")
    assert len(prod.availability_zones) == 3
    assert prod.network.nat_gateways == 3
    on_demand_floor = sum(
        group.min_size
        for group in prod.cluster.gpu_node_groups
        if group.capacity_type is CapacityType.ON_DEMAND
    )
    assert on_demand_floor >= 1
    assert any(group.capacity_type is CapacityType.SPOT for group in prod.cluster.gpu_node_groups)


def test_config_is_frozen() -> None:
    dev = load_stage(CONFIG_DIR / "dev.yaml")
    with pytest.raises(ValueError, match="frozen"):
        dev.network.nat_gateways = 5  # type: ignore[misc]


def _gpu_group(data: dict[str, Any]) -> dict[str, Any]:
    group: dict[str, Any] = data["cluster"]["gpu_node_groups"][0]
    return group


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda d: _gpu_group(d).update(min_size=3, max_size=2, desired_size=2),
            ["cluster.gpu_node_groups[0]", "min_size 3 is greater than max_size 2"],
            id="min-greater-than-max",
        ),
        pytest.param(
            lambda d: _gpu_group(d).update(min_size=0, max_size=2, desired_size=5),
            ["cluster.gpu_node_groups[0]", "desired_size 5 is outside [min_size, max_size] = [0, 2]"],
            id="desired-outside-bounds",
        ),
        pytest.param(
            lambda d: _gpu_group(d).update(instance_types=["g5.xlarge", "m7i.large"]),
            [
                "cluster.gpu_node_groups[0].instance_types",
                "m7i.large is not a known GPU instance type",
                "allowed:",
            ],
            id="non-gpu-instance-type",
        ),
        pytest.param(
            lambda d: _gpu_group(d).update(instance_types=["g9.huge"]),
            ["cluster.gpu_node_groups[0].instance_types", "g9.huge", "allowed: g5.12xlarge"],
            id="unknown-instance-type",
        ),
        pytest.param(
            lambda d: _gpu_group(d).update(instance_types=["g5.2xlarge", "g5.12xlarge"]),
            ["instance_types", "different GPU counts", "g5.2xlarge=1", "g5.12xlarge=4"],
            id="mixed-gpu-counts",
        ),
        pytest.param(
            lambda d: d.update(availability_zones=["us-east-1a"]),
            ["availability_zones", "at least 2 items"],
            id="fewer-than-two-azs",
        ),
        pytest.param(
            lambda d: d["network"].update(vpc_cidr="10.10.0.0/33"),
            ["network.vpc_cidr", "'10.10.0.0/33' is not a valid IPv4 CIDR", "allowed:"],
            id="invalid-cidr",
        ),
        pytest.param(
            lambda d: d["network"].update(vpc_cidr="10.10.0.1/16"),
            ["network.vpc_cidr", "host bits set", "allowed:"],
            id="cidr-with-host-bits",
        ),
        pytest.param(
            lambda d: d["cluster"].update(public_access_cidrs=["10.10.4.0/24"]),
            ["public_access_cidrs 10.10.4.0/24 overlaps network.vpc_cidr 10.10.0.0/16"],
            id="overlapping-cidr",
        ),
        pytest.param(
            lambda d: d["cluster"]["gpu_node_groups"].append(copy.deepcopy(_gpu_group(d))),
            ["cluster.gpu_node_groups", "duplicate node-group names ['a10g-spot']"],
            id="duplicate-node-group-names",
        ),
        pytest.param(
            lambda d: _gpu_group(d).update(capacity_type="reserved"),
            ["cluster.gpu_node_groups[0].capacity_type", "'on-demand' or 'spot'", "'reserved'"],
            id="unknown-capacity-type",
        ),
        pytest.param(
            lambda d: d["cluster"].update(kubernetes_version="1.29"),
            ["cluster.kubernetes_version", "'1.29' is not supported", "allowed: 1.35, 1.36"],
            id="unknown-kubernetes-version",
        ),
        pytest.param(
            lambda d: d.update(account="123456789012", region=None),
            ["account 123456789012 is set but region is not"],
            id="account-without-region",
        ),
        pytest.param(
            lambda d: d["network"].update(nat_gatways=2),
            ["network.nat_gatways", "unknown key"],
            id="unknown-key-typo",
        ),
        pytest.param(
            lambda d: d.update(availability_zones=["eu-west-1a", "eu-west-1b"]),
            ["availability_zones ['eu-west-1a', 'eu-west-1b'] are not in region us-east-1"],
            id="azs-outside-region",
        ),
        pytest.param(
            lambda d: d["network"].update(nat_gateways=3),
            ["network.nat_gateways 3 exceeds the 2 availability zones"],
            id="more-nats-than-azs",
        ),
        pytest.param(
            lambda d: d.update(log_retention_days=31),
            ["log_retention_days", "31 days is not a CloudWatch Logs retention", "allowed:"],
            id="bad-log-retention",
        ),
        pytest.param(
            lambda d: _gpu_group(d).update(labels={"kubernetes.io/role": "x"}),
            ["labels", "reserved prefix"],
            id="reserved-label",
        ),
        pytest.param(
            lambda d: _gpu_group(d).update(labels={"team": "a" * 64}),
            ["labels", "team=", "is not a valid Kubernetes label value (63 characters"],
            id="label-value-too-long",
        ),
    ],
)
def test_bad_config_names_file_field_value_and_allowed(mutate: Any, expected: list[str]) -> None:
    assert_rejected_naming(mutate, expected)


def test_duplicate_yaml_keys_are_rejected(tmp_path: Path) -> None:
    text = (CONFIG_DIR / "dev.yaml").read_text() + "\nlog_retention_days: 30\n"
    path = tmp_path / "dev.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="duplicate key 'log_retention_days'"):
        load_stage(path)


def test_name_comes_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "qa.yaml"
    path.write_text("name: other\n" + (CONFIG_DIR / "dev.yaml").read_text())
    with pytest.raises(ConfigError, match="name comes from the file name"):
        load_stage(path)
