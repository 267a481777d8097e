#!/usr/bin/env python3
"""Builds one InferenceStage per config/<stage>.yaml. The only module that reads files or the environment."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from config import ConfigError, StageConfig, load_stages
from stacks.inference_stage import InferenceStage

ROOT = Path(__file__).resolve().parent


def cdk_json_context() -> dict[str, object]:
    """Feature flags and committed lookups, for runs that do not go through the CDK CLI."""
    context: dict[str, object] = json.loads((ROOT / "cdk.json").read_text())["context"]
    context_file = ROOT / "cdk.context.json"
    if context_file.exists():
        context.update(json.loads(context_file.read_text()))
    return context


def build_app(app: cdk.App, stages: dict[str, StageConfig]) -> dict[str, InferenceStage]:
    """Adds every stage to `app` and turns on the cdk-nag AwsSolutions validation plugin."""
    built = {name: InferenceStage(app, name, config=config) for name, config in stages.items()}
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return built


def main() -> None:
    try:
        stages = load_stages()
    except ConfigError as error:
        print(error, file=sys.stderr)
        sys.exit(1)
    app = cdk.App()
    build_app(app, stages)
    app.synth()


if __name__ == "__main__":
    main()
