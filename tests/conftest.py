"""Session fixtures: every stage is synthesised once per test run and shared by all tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_DEPRECATED", "quiet")

from config.loader import stage_files
from tests.synth import PipelineSynthResult, SynthResult, synthesize, synthesize_pipeline

STAGES = tuple(path.stem for path in stage_files())
"""Every config/<stage>.yaml, so a new stage is synthesised, snapshotted and linted like the others."""


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return synthesize(Path(tmp_path_factory.mktemp("cdk.out")))


@pytest.fixture(params=STAGES, scope="session")
def stage(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def pipeline_synth(tmp_path_factory: pytest.TempPathFactory) -> PipelineSynthResult:
    return synthesize_pipeline(Path(tmp_path_factory.mktemp("pipeline.cdk.out")))
