"""config/pipeline.yaml loads, and each kind of bad pipeline configuration fails with a clear message."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from app import load_pipeline_if_present
from config import ConfigError, load_stages
from config.loader import read_cdk_context
from config.pipeline import PIPELINE_FILE, load_pipeline, parse_pipeline, pinned_cdk_cli_version

SOURCE = "config/pipeline.yaml"
STAGES = ["dev", "staging", "prod"]
PINNED = "2.1148.1"


def pipeline_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(PIPELINE_FILE.read_text())
    return copy.deepcopy(data)


def error_for(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_pipeline(data, source=SOURCE, known_stages=STAGES, pinned_cdk_cli_version=PINNED)
    return str(raised.value)


def test_the_committed_pipeline_file_loads() -> None:
    pipeline = load_pipeline(known_stages=list(load_stages()))
    assert pipeline.stage_names == ["dev", "staging", "prod"]
    assert [stage.name for stage in pipeline.stages if stage.manual_approval] == ["prod"]
    assert pipeline.source.connection_arn is not None
    assert pipeline.source.codecommit_repository is None


def test_cli_version_is_the_one_package_json_pins() -> None:
    package = json.loads((PIPELINE_FILE.parent.parent / "package.json").read_text())
    pinned = package["devDependencies"]["aws-cdk"]
    assert pinned_cdk_cli_version() == pinned
    assert load_pipeline(known_stages=STAGES).cdk_cli_version == pinned


def test_codecommit_source_is_accepted() -> None:
    data = pipeline_data()
    data["source"] = {"codecommit_repository": "llm-inference-eks", "branch": "release"}
    pipeline = parse_pipeline(data, source=SOURCE, known_stages=STAGES, pinned_cdk_cli_version=PINNED)
    assert pipeline.source.codecommit_repository == "llm-inference-eks"
    assert pipeline.source.branch == "release"


def test_config_is_frozen() -> None:
    pipeline = load_pipeline(known_stages=STAGES)
    with pytest.raises(ValueError, match="frozen"):
        pipeline.account = "999999999999"  # type: ignore[misc]


def _without_connection(data: dict[str, Any]) -> None:
    del data["source"]["connection_arn"]


def _unknown_stage(data: dict[str, Any]) -> None:
    data["stages"].insert(1, {"name": "qa"})


def _prod_without_approval(data: dict[str, Any]) -> None:
    data["stages"][2] = {"name": "prod"}


def _prod_before_staging(data: dict[str, Any]) -> None:
    data["stages"] = [data["stages"][0], data["stages"][2], data["stages"][1]]


def _cli_mismatch(data: dict[str, Any]) -> None:
    data["cdk_cli_version"] = "2.1000.0"


def _not_a_cli_version(data: dict[str, Any]) -> None:
    data["cdk_cli_version"] = "latest"


def _assets_range(data: dict[str, Any]) -> None:
    data["cdk_assets_version"] = "^4"


def _bad_connection_arn(data: dict[str, Any]) -> None:
    data["source"]["connection_arn"] = "arn:aws:s3:::bucket"


def _both_sources(data: dict[str, Any]) -> None:
    data["source"]["codecommit_repository"] = "llm-inference-eks"


def _no_source(data: dict[str, Any]) -> None:
    data["source"] = {"branch": "main"}


def _duplicate_stage(data: dict[str, Any]) -> None:
    data["stages"].append({"name": "dev"})


def _bad_account(data: dict[str, Any]) -> None:
    data["account"] = "1234"


def _typo(data: dict[str, Any]) -> None:
    data["stages"][0]["manual_aproval"] = True


def _bad_repository(data: dict[str, Any]) -> None:
    data["source"]["repository"] = "just-a-name"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            _without_connection,
            [
                "config/pipeline.yaml: source: connection_arn is required for repository "
                "'example-org/llm-inference-eks'",
                "allowed: the ARN of a CodeConnections connection",
            ],
        ),
        (
            _unknown_stage,
            ["config/pipeline.yaml: stages: ['qa'] has no config/<stage>.yaml", "allowed: ['dev', 'staging'"],
        ),
        (
            _prod_without_approval,
            [
                "config/pipeline.yaml: stages: stage 'prod' deploys without approval",
                "allowed: manual_approval: true",
            ],
        ),
        (
            _prod_before_staging,
            [
                "stages: stages ['dev', 'prod', 'staging'] are out of order",
                "allowed: dev before staging before prod",
            ],
        ),
        (
            _cli_mismatch,
            [
                "config/pipeline.yaml: cdk_cli_version: '2.1000.0' differs from aws-cdk '2.1148.1' pinned "
                "in package.json; allowed: '2.1148.1'",
                "(got '2.1000.0')",
            ],
        ),
        (_assets_range, ["cdk_assets_version: '^4' is not an exact version"]),
        (_not_a_cli_version, ["cdk_cli_version: 'latest' is not a CDK CLI version"]),
        (_bad_connection_arn, ["source.connection_arn: 'arn:aws:s3:::bucket' is not a connection ARN"]),
        (_both_sources, ["source: set either codecommit_repository or connection_arn + repository"]),
        (_no_source, ["source: no source; allowed: connection_arn + repository"]),
        (_duplicate_stage, ["stages: stage ['dev'] listed more than once"]),
        (_bad_account, ["account: account '1234' must be 12 digits"]),
        (_typo, ["stages[0].manual_aproval: unknown key"]),
        (_bad_repository, ["source.repository: 'just-a-name' is not a repository path; allowed: owner/repo"]),
    ],
)
def test_bad_pipeline_config_names_file_field_value_and_allowed(mutate: Any, expected: list[str]) -> None:
    data = pipeline_data()
    mutate(data)
    message = error_for(data)
    for fragment in expected:
        assert fragment in message


def test_cli_version_mismatch_is_caught_when_loading_from_disk(tmp_path: Path) -> None:
    package_json = tmp_path / "package.json"
    package_json.write_text(json.dumps({"devDependencies": {"aws-cdk": "2.1999.0"}}))
    with pytest.raises(ConfigError, match=r"differs from aws-cdk '2\.1999\.0' pinned in package\.json"):
        load_pipeline(known_stages=STAGES, package_json=package_json)


def test_a_range_in_package_json_is_refused(tmp_path: Path) -> None:
    package_json = tmp_path / "package.json"
    package_json.write_text(json.dumps({"devDependencies": {"aws-cdk": "^2.1148.1"}}))
    with pytest.raises(ConfigError, match="is not an exact pin"):
        pinned_cdk_cli_version(package_json)


def test_duplicate_yaml_keys_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE_FILE.read_text() + 'account: "999999999999"\n')
    with pytest.raises(ConfigError, match="duplicate key 'account'"):
        load_pipeline(path, known_stages=STAGES)


def test_app_builds_the_pipeline_only_when_the_file_exists(tmp_path: Path) -> None:
    stages = load_stages()
    assert load_pipeline_if_present(stages, tmp_path / "pipeline.yaml") is None
    present = load_pipeline_if_present(stages, PIPELINE_FILE)
    assert present is not None
    assert present.stage_names == ["dev", "staging", "prod"]


def test_load_stages_ignores_the_pipeline_file() -> None:
    assert "pipeline" not in load_stages()


def _parse_with_stages(data: dict[str, Any]) -> None:
    stages = load_stages()
    parse_pipeline(
        data,
        source=SOURCE,
        known_stages=list(stages),
        pinned_cdk_cli_version=PINNED,
        stage_configs=stages,
        cdk_context=read_cdk_context(),
    )


def test_a_stage_without_an_account_must_have_real_azs_in_the_pipelines_account() -> None:
    data = pipeline_data()
    _parse_with_stages(copy.deepcopy(data))  # dev borrows 111111111111, whose us-east-1 AZs are committed
    data["account"] = "444444444444"
    with pytest.raises(ConfigError) as raised:
        _parse_with_stages(data)
    assert str(raised.value).startswith(
        "config/pipeline.yaml: stage 'dev' has no account, so the pipeline deploys it into 444444444444, "
        "but cdk.context.json has no key 'availability-zones:account=444444444444:region=us-east-1'"
    )
