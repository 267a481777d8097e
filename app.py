#!/usr/bin/env python3
"""Builds one InferenceStage per config/<stage>.yaml, and the delivery pipeline when config/pipeline.yaml
exists. The only module that reads files or the environment."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from config import ConfigError, StageConfig, load_stages
from config.loader import CONFIG_DIR, display_path
from config.pipeline import PIPELINE_FILE, PipelineConfig, load_pipeline
from stacks.inference_stage import InferenceStage
from stacks.pipeline_stack import PipelineStack

ROOT = Path(__file__).resolve().parent
PIPELINE_STACK_ID = "Pipeline"
# `cdk synth -c stage=dev` (make synth STAGE=dev) builds that stage alone: a fast edit-synth loop.
STAGE_CONTEXT_KEY = "stage"
FAILOVER_CONTEXT = "failover"
"""`cdk synth|deploy -c failover=<stage>` adds <stage>-failover: the stage in its replica region."""


def cdk_json_context() -> dict[str, object]:
    """Feature flags and committed lookups, for runs that do not go through the CDK CLI."""
    context: dict[str, object] = json.loads((ROOT / "cdk.json").read_text())["context"]
    context_file = ROOT / "cdk.context.json"
    if context_file.exists():
        context.update(json.loads(context_file.read_text()))
    return context


def load_pipeline_if_present(
    stages: dict[str, StageConfig], pipeline_file: Path = PIPELINE_FILE
) -> PipelineConfig | None:
    """The pipeline's configuration, or None when `pipeline_file` does not exist (hand deploys only)."""
    if not pipeline_file.exists():
        return None
    return load_pipeline(pipeline_file, known_stages=list(stages), stage_configs=stages)


def select_stages(stages: dict[str, StageConfig], selected: object) -> dict[str, StageConfig]:
    """Every stage when `selected` is None, else only the stage it names (from `-c stage=<name>`)."""
    if selected is None:
        return stages
    if not isinstance(selected, str) or selected not in stages:
        raise ConfigError(
            f"-c {STAGE_CONTEXT_KEY}={selected}: no such stage; allowed: {', '.join(stages)} "
            "(one per config/<stage>.yaml)"
        )
    return {selected: stages[selected]}


def build_app(
    app: cdk.App, stages: dict[str, StageConfig], *, pipeline: PipelineConfig | None = None
) -> dict[str, InferenceStage]:
    """Adds every stage to `app` for hand deploys (construct ids = stage names) and, when `pipeline` is
    given, the pipeline stack, which deploys its own copies of the same stages nested in its scope.
    Turns on the cdk-nag AwsSolutions validation plugin for all of it."""
    built = {name: InferenceStage(app, name, config=config) for name, config in stages.items()}
    if pipeline is not None:
        PipelineStack(app, PIPELINE_STACK_ID, pipeline_config=pipeline, stage_configs=stages)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return built


def add_failover_stage(app: cdk.App, stages: dict[str, StageConfig], stage: str) -> InferenceStage:
    """The stage rebuilt from the same config in its disaster-recovery region (docs/operations.md)."""
    if stage not in stages:
        raise ConfigError(f"-c {FAILOVER_CONTEXT}={stage}: no such stage; allowed: {list(stages)}")
    try:
        config = stages[stage].failover()
    except ValueError as error:
        raise ConfigError(f"config/{stage}.yaml: {error}") from None
    return InferenceStage(app, f"{stage}-failover", config=config)


def main(pipeline_file: Path = PIPELINE_FILE, config_dir: Path = CONFIG_DIR) -> None:
    # A bad stage file stops here with its message: the config loads before any stack is built.
    app = cdk.App()
    selected = app.node.try_get_context(STAGE_CONTEXT_KEY)
    try:
        all_stages = load_stages(config_dir)
        pipeline = load_pipeline_if_present(all_stages, pipeline_file)
        stages = select_stages(all_stages, selected)
    except ConfigError as error:
        print(error, file=sys.stderr)
        sys.exit(1)
    for name, config in stages.items():
        for warning in config.safety_warnings:
            print(f"{display_path(config_dir / f'{name}.yaml')}: warning: {warning}", file=sys.stderr)
    # The pipeline deploys every stage, so a run for one stage leaves it out.
    build_app(app, stages, pipeline=None if selected is not None else pipeline)
    failover = app.node.try_get_context(FAILOVER_CONTEXT)
    if failover:
        try:
            add_failover_stage(app, all_stages, str(failover))
        except ConfigError as error:
            print(error, file=sys.stderr)
            sys.exit(1)
    app.synth()


if __name__ == "__main__":
    main()
