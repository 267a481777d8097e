"""Synthesise the whole app once and hand out its templates."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from app import build_app, cdk_json_context
from config import StageConfig, load_stages
from stacks.inference_stage import InferenceStage
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
