"""The delivery pipeline's configuration (config/pipeline.yaml): where it runs, its source, stage order.

Validated against the stage files that exist and the CDK CLI version pinned in package.json, which
the loader passes in as validation context (`known_stages`, `pinned_cdk_cli_version`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from config.base import DnsLabel, Strict, duplicates
from config.loader import (
    CONFIG_DIR,
    ConfigError,
    describe_validation_error,
    display_path,
    read_cdk_context,
    read_yaml_document,
)
from config.stage import ACCOUNT, AZ_CONTEXT_FILE, REGION, StageConfig, az_context_key
from config.stages import PRODUCTION_STAGES, STAGE_ORDER

PIPELINE_FILE = CONFIG_DIR / "pipeline.yaml"
PACKAGE_JSON = CONFIG_DIR.parent / "package.json"
STAGES_NEEDING_APPROVAL = PRODUCTION_STAGES
"""Stages that must never deploy without a human's approval."""

CONNECTION_ARN = re.compile(
    r"^arn:aws(-[a-z]+)*:(codeconnections|codestar-connections):[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:"
    r"connection/[0-9a-f-]{36}$"
)
REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")
CODECOMMIT_REPOSITORY = re.compile(r"^[\w.-]{1,100}$")
BRANCH = re.compile(r"^[\w./-]{1,255}$")
CDK_CLI_VERSION = re.compile(r"^2\.\d+\.\d+$")
EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


class SourceConfig(Strict):
    """Either a CodeConnections repository (connection_arn + repository) or a CodeCommit repository."""

    connection_arn: str | None = Field(default=None, description="CodeConnections connection ARN.")
    repository: str | None = Field(default=None, description="owner/repo on GitHub, GitLab or Bitbucket.")
    codecommit_repository: str | None = Field(default=None, description="CodeCommit repository name.")
    branch: str = Field(default="main", description="The branch whose pushes start the pipeline.")

    @field_validator("connection_arn")
    @classmethod
    def _connection_arn(cls, value: str | None) -> str | None:
        if value is not None and not CONNECTION_ARN.match(value):
            raise ValueError(
                f"{value!r} is not a connection ARN; allowed: "
                "arn:aws:codeconnections:<region>:<account>:connection/<uuid>"
            )
        return value

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str | None) -> str | None:
        if value is not None and not REPOSITORY.match(value):
            raise ValueError(f"{value!r} is not a repository path; allowed: owner/repo")
        return value

    @field_validator("codecommit_repository")
    @classmethod
    def _codecommit_repository(cls, value: str | None) -> str | None:
        if value is not None and not CODECOMMIT_REPOSITORY.match(value):
            raise ValueError(
                f"{value!r} is not a CodeCommit repository name; allowed: 1-100 letters, digits, "
                "'.', '_', '-'"
            )
        return value

    @field_validator("branch")
    @classmethod
    def _branch(cls, value: str) -> str:
        if not BRANCH.match(value) or ".." in value:
            raise ValueError(f"{value!r} is not a branch name; allowed: letters, digits, '.', '_', '-', '/'")
        return value

    @model_validator(mode="after")
    def _one_kind_of_source(self) -> SourceConfig:
        if self.codecommit_repository is not None:
            if self.connection_arn is not None or self.repository is not None:
                raise ValueError("set either codecommit_repository or connection_arn + repository, not both")
            return self
        if self.repository is None:
            raise ValueError(
                "no source; allowed: connection_arn + repository (CodeConnections) or codecommit_repository"
            )
        if self.connection_arn is None:
            raise ValueError(
                f"connection_arn is required for repository {self.repository!r}; allowed: the ARN of a "
                "CodeConnections connection (arn:aws:codeconnections:<region>:<account>:connection/<uuid>)"
            )
        return self


class PipelineStageConfig(Strict):
    name: DnsLabel = Field(description="A stage file config/<name>.yaml.")
    manual_approval: bool = Field(default=False, description="A human approves before this stage deploys.")


class PipelineConfig(Strict):
    account: str = Field(description="The account the pipeline runs in (the tooling account).")
    region: str = Field(description="The region the pipeline runs in.")
    pipeline_name: DnsLabel = "llm-inference"
    source: SourceConfig
    stages: list[PipelineStageConfig] = Field(min_length=1, description="Deployment order.")
    cdk_cli_version: str = Field(description="Must equal the aws-cdk version pinned in package.json.")
    cdk_assets_version: str = Field(description="Exact cdk-assets version for the asset-publishing steps.")

    @field_validator("account")
    @classmethod
    def _account(cls, value: str) -> str:
        if not ACCOUNT.match(value):
            raise ValueError(f"account {value!r} must be 12 digits")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not REGION.match(value):
            raise ValueError(f"region {value!r} is not an AWS region name such as eu-west-1")
        return value

    @field_validator("cdk_cli_version")
    @classmethod
    def _cli_version(cls, value: str, info: ValidationInfo) -> str:
        if not CDK_CLI_VERSION.match(value):
            raise ValueError(f"{value!r} is not a CDK CLI version; allowed: 2.<minor>.<patch>")
        pinned = (info.context or {}).get("pinned_cdk_cli_version")
        if pinned is not None and value != pinned:
            raise ValueError(
                f"{value!r} differs from aws-cdk {pinned!r} pinned in package.json; allowed: {pinned!r} "
                "(the pipeline must synthesise with the CLI the tests use)"
            )
        return value

    @field_validator("cdk_assets_version")
    @classmethod
    def _assets_version(cls, value: str) -> str:
        if not EXACT_VERSION.match(value):
            raise ValueError(
                f"{value!r} is not an exact version; allowed: <major>.<minor>.<patch>, e.g. 4.7.3"
            )
        return value

    @field_validator("stages")
    @classmethod
    def _stages(cls, value: list[PipelineStageConfig], info: ValidationInfo) -> list[PipelineStageConfig]:
        names = [stage.name for stage in value]
        if duplicates(names):
            raise ValueError(f"stage {duplicates(names)} listed more than once; each stage deploys once")
        known: list[str] | None = (info.context or {}).get("known_stages")
        if known is not None:
            unknown = [name for name in names if name not in known]
            if unknown:
                raise ValueError(f"{unknown} has no config/<stage>.yaml; allowed: {known}")
        ranked = [name for name in names if name in STAGE_ORDER]
        if ranked != sorted(ranked, key=STAGE_ORDER.index):
            raise ValueError(
                f"stages {ranked} are out of order; allowed: {' before '.join(STAGE_ORDER)} "
                "(a change must pass the smaller stages first)"
            )
        for stage in value:
            if stage.name in STAGES_NEEDING_APPROVAL and not stage.manual_approval:
                raise ValueError(
                    f"stage {stage.name!r} deploys without approval; allowed: manual_approval: true "
                    f"(required for {list(STAGES_NEEDING_APPROVAL)})"
                )
        return value

    @model_validator(mode="after")
    def _borrowed_environments(self, info: ValidationInfo) -> PipelineConfig:
        """A stage file without an account deploys into the pipeline's account: its AZs must be real there."""
        context = info.context or {}
        stages: dict[str, StageConfig] | None = context.get("stage_configs")
        cdk_context: dict[str, object] | None = context.get("cdk_context")
        if stages is None or cdk_context is None:
            return self
        for name in self.stage_names:
            stage = stages.get(name)
            if stage is None or stage.account is not None:
                continue
            region = stage.region or self.region
            key = az_context_key(self.account, region)
            zones = cdk_context.get(key)
            if not isinstance(zones, list):
                raise ValueError(
                    f"stage {name!r} has no account, so the pipeline deploys it into {self.account}, but "
                    f"{AZ_CONTEXT_FILE} has no key {key!r}; add it (aws ec2 describe-availability-zones "
                    f"--region {region}) or give config/{name}.yaml an account"
                )
            missing = [az for az in stage.availability_zones if az not in zones]
            if missing:
                raise ValueError(
                    f"stage {name!r} deploys into account {self.account} (the pipeline's), where "
                    f"availability_zones {missing} do not exist; allowed: {zones} ({AZ_CONTEXT_FILE} {key})"
                )
        return self

    @property
    def stage_names(self) -> list[str]:
        return [stage.name for stage in self.stages]


def pinned_cdk_cli_version(package_json: Path = PACKAGE_JSON) -> str:
    """The aws-cdk version package.json pins (what `make install` and the pipeline install)."""
    try:
        data: Any = json.loads(package_json.read_text(encoding="utf-8"))
        version = data["devDependencies"]["aws-cdk"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"{display_path(package_json)}: devDependencies.aws-cdk is not readable") from None
    if not isinstance(version, str) or not CDK_CLI_VERSION.match(version):
        raise ConfigError(
            f"{display_path(package_json)}: devDependencies.aws-cdk {version!r} is not an exact pin "
            "such as 2.1148.1"
        )
    return version


def parse_pipeline(
    data: object,
    *,
    source: str,
    known_stages: list[str],
    pinned_cdk_cli_version: str,
    root: yaml.Node | None = None,
    stage_configs: dict[str, StageConfig] | None = None,
    cdk_context: dict[str, object] | None = None,
) -> PipelineConfig:
    """Validate already-parsed YAML; `source` is what error messages call the file.

    With `stage_configs` and `cdk_context`, stages without an account are checked against the AZs of
    the pipeline's account, where they deploy.
    """
    if data is None:
        raise ConfigError(f"{source}: the file is empty (or only comments); allowed: the pipeline's settings")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings at the top level")
    context = {
        "known_stages": known_stages,
        "pinned_cdk_cli_version": pinned_cdk_cli_version,
        "stage_configs": stage_configs,
        "cdk_context": cdk_context,
    }
    try:
        return PipelineConfig.model_validate(data, context=context)
    except ValidationError as error:
        raise ConfigError(
            describe_validation_error(error, source, kind="pipeline", model=PipelineConfig, root=root)
        ) from None


def load_pipeline(
    path: Path = PIPELINE_FILE,
    *,
    known_stages: list[str],
    package_json: Path = PACKAGE_JSON,
    stage_configs: dict[str, StageConfig] | None = None,
) -> PipelineConfig:
    data, root, source = read_yaml_document(path)
    return parse_pipeline(
        data,
        source=source,
        root=root,
        known_stages=known_stages,
        pinned_cdk_cli_version=pinned_cdk_cli_version(package_json),
        stage_configs=stage_configs,
        cdk_context=read_cdk_context() if stage_configs is not None else None,
    )
