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


def main(pipeline_file: Path = PIPELINE_FILE, config_dir: Path = CONFIG_DIR) -> None:
    # A bad stage file stops here with its message: the config loads before any stack is built.
    try:
        stages = load_stages(config_dir)
        pipeline = load_pipeline_if_present(stages, pipeline_file)
    except ConfigError as error:
        print(error, file=sys.stderr)
        sys.exit(1)
    for name, config in stages.items():
        for warning in config.safety_warnings:
            print(f"{display_path(config_dir / f'{name}.yaml')}: warning: {warning}", file=sys.stderr)
    app = cdk.App()
    build_app(app, stages, pipeline=pipeline)
    app.synth()


if __name__ == "__main__":
    main()
