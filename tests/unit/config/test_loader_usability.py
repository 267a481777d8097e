"""What a new user gets wrong in YAML reads as a sentence about their file, not a pydantic dump."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, load_stage
from config.loader import read_cdk_context
from tests.unit.config.cases import CONFIG_DIR


def error_loading(tmp_path: Path, text: str, name: str = "dev") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_stage(path, cdk_context=read_cdk_context())
    return str(raised.value)


def dev_text() -> str:
    return (CONFIG_DIR / "dev.yaml").read_text()


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n# and another\n"])
def test_an_empty_file_says_so(tmp_path: Path, text: str) -> None:
    message = error_loading(tmp_path, text)
    assert message.endswith("dev.yaml: the file is empty (or only comments); allowed: a stage's settings")


def test_a_yaml_error_names_the_file_line_and_column(tmp_path: Path) -> None:
    message = error_loading(tmp_path, "region: us-east-1\nnetwork: [unclosed\n")
    assert "<unicode string>" not in message
    assert message.startswith(f"{tmp_path / 'dev.yaml'}:3:1: not valid YAML:")
    assert "expected ',' or ']'" in message


def test_an_unquoted_version_read_as_a_float_says_quote_it(tmp_path: Path) -> None:
    text = dev_text().replace('kubernetes_version: "1.36"', "kubernetes_version: 1.30")
    message = error_loading(tmp_path, text)
    assert 'YAML reads 1.30 as a number (1.3); quote it: "1.30"' in message
    assert "cluster.kubernetes_version" in message


def test_an_unquoted_account_read_as_an_integer_says_quote_it(tmp_path: Path) -> None:
    text = dev_text().replace("region: us-east-1", "account: 123456789012\nregion: us-east-1", 1)
    message = error_loading(tmp_path, text)
    assert "account: Input should be a valid string: YAML reads 123456789012 as a number" in message
    assert 'quote it: "123456789012"' in message


def test_errors_give_the_line_of_the_field(tmp_path: Path) -> None:
    text = dev_text().replace("vpc_cidr: 10.10.0.0/16", "vpc_cidr: 10.10.0.1/16")
    line = next(number for number, row in enumerate(text.splitlines(), start=1) if "vpc_cidr" in row)
    message = error_loading(tmp_path, text)
    assert message.startswith(
        f"{tmp_path / 'dev.yaml'}:{line}: network.vpc_cidr: '10.10.0.1/16' has host bits set"
    )


def test_a_misspelt_key_points_at_its_line_and_suggests_the_right_one(tmp_path: Path) -> None:
    text = dev_text().replace("  nat_gateways: 1", "  nat_gatways: 1")
    line = next(number for number, row in enumerate(text.splitlines(), start=1) if "nat_gatways" in row)
    message = error_loading(tmp_path, text)
    assert f"dev.yaml:{line}: network.nat_gatways: unknown key; did you mean 'nat_gateways'?" in message
    assert "allowed keys here: flow_logs_retention_days, nat_gateways, vpc_cidr" in message


def test_one_problem_is_one_line_and_several_get_a_header(tmp_path: Path) -> None:
    one = error_loading(tmp_path, dev_text().replace("\nlog_retention_days: 14", "\nlog_retention_days: 13"))
    assert len(one.splitlines()) == 1
    several = error_loading(
        tmp_path,
        dev_text()
        .replace("\nlog_retention_days: 14", "\nlog_retention_days: 13")
        .replace("flow_logs_retention_days: 30", "flow_logs_retention_days: 31"),
    )
    assert several.splitlines()[0].endswith("dev.yaml: invalid stage configuration (2 problems)")
    assert len(several.splitlines()) == 3


@pytest.mark.parametrize("word", ["true", "yes", "on"])
def test_booleans_where_numbers_belong_are_refused(tmp_path: Path, word: str) -> None:
    message = error_loading(tmp_path, dev_text().replace("min_replicas: 1", f"min_replicas: {word}"))
    assert "models[0].autoscaling.min_replicas: true is a boolean; allowed: a number (got True)" in message


def test_a_dns_label_pattern_is_explained_in_words(tmp_path: Path) -> None:
    message = error_loading(tmp_path, dev_text().replace("- name: a10g-spot", "- name: A10G_spot"))
    assert "cluster.gpu_node_groups[0].name: allowed: a DNS label: 1 to 63 lower-case letters" in message
    assert "^[a-z0-9]" not in message


def test_a_missing_field_says_what_to_add_where(tmp_path: Path) -> None:
    text = dev_text().replace("  nat_gateways: 1\n", "")
    line = next(number for number, row in enumerate(text.splitlines(), start=1) if row == "network:")
    message = error_loading(tmp_path, text)
    assert message.endswith(
        f"dev.yaml:{line}: network.nat_gateways: required but missing; add `nat_gateways:` here "
        "(see config/README.md for its values)"
    )
