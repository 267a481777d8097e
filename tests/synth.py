"""Synthesise the whole app once and hand out its templates."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from app import PIPELINE_STACK_ID, build_app, cdk_json_context
from config import StageConfig, load_stages
from config.pipeline import PipelineConfig, load_pipeline
from stacks.inference_stage import InferenceStage
from stacks.pipeline_stack import PipelineStack
from tools.synth_summary import stage_templates, validation_violations


@dataclass(frozen=True)
class SynthResult:
    outdir: Path
    configs: dict[str, StageConfig]
    stages: dict[str, InferenceStage]
    templates: dict[str, dict[str, dict[str, Any]]]
    nag_violations: list[str]

    def template(self, stage: str, stack: str) -> Template:
        return Template.from_json(self.templates[stage][stack])


def synthesize(outdir: Path) -> SynthResult:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    configs = load_stages()
    app = cdk.App(context=cdk_json_context(), outdir=str(outdir))
    stages = build_app(app, configs)
    app.synth()
    return SynthResult(
        outdir=outdir,
        configs=configs,
        stages=stages,
        templates=stage_templates(outdir),
        nag_violations=validation_violations(outdir),
    )


@dataclass(frozen=True)
class PipelineSynthResult:
    """The pipeline stack alone (no hand-deployed stages), synthesised once per session."""

    outdir: Path
    config: PipelineConfig
    stack: PipelineStack
    pipeline_template: dict[str, Any]
    support_templates: dict[str, dict[str, Any]]
    stage_templates: dict[str, dict[str, dict[str, Any]]]
    nag_violations: list[str]

    def template(self) -> Template:
        return Template.from_json(self.pipeline_template)


def synthesize_pipeline(outdir: Path) -> PipelineSynthResult:
    """What app.py adds when config/pipeline.yaml exists, in an app of its own (with cdk-nag)."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    configs = load_stages()
    config = load_pipeline(known_stages=list(configs))
    app = cdk.App(context=cdk_json_context(), outdir=str(outdir))
    stack = PipelineStack(app, PIPELINE_STACK_ID, pipeline_config=config, stage_configs=configs)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    templates = {path.name.removesuffix(".template.json"): path for path in outdir.glob("*.template.json")}
    return PipelineSynthResult(
        outdir=outdir,
        config=config,
        stack=stack,
        pipeline_template=json.loads(templates.pop(PIPELINE_STACK_ID).read_text()),
        support_templates={name: json.loads(path.read_text()) for name, path in templates.items()},
        stage_templates={
            name.removeprefix(f"{PIPELINE_STACK_ID}-"): stacks
            for name, stacks in stage_templates(outdir).items()
        },
        nag_violations=validation_violations(outdir),
    )
