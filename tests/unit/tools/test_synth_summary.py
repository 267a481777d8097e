"""make synth's summary: each stage once (the pipeline's copies on one line), and a next step at the end."""

from __future__ import annotations

import pytest

from tests.synth import PipelineSynthResult, SynthResult
from tools.synth_summary import main, next_steps


def test_each_hand_stage_is_listed_once_with_its_stacks(
    synth: SynthResult, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(synth.outdir) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("stage ")] == [
        "stage dev",
        "stage staging",
        "stage prod",
    ]


def test_the_pipelines_copies_of_the_stages_are_one_line_not_a_stage_each(
    pipeline_synth: PipelineSynthResult, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(pipeline_synth.outdir) == 0
    out = capsys.readouterr().out
    assert "stage Pipeline-" not in out
    assert [line for line in out.splitlines() if line.startswith("pipeline:")] == [
        f"pipeline: deploys dev, staging, prod with the stage templates above -> {pipeline_synth.outdir}/"
    ]


def test_the_summary_ends_with_the_next_step(synth: SynthResult, capsys: pytest.CaptureFixture[str]) -> None:
    main(synth.outdir)
    lines = capsys.readouterr().out.rstrip().splitlines()
    assert lines[-4] == "Next:"
    assert lines[-3].split()[:2] == ["make", "test"]


def test_after_one_stage_the_next_step_is_its_diff_and_deploy() -> None:
    steps = [" ".join(step.split()[:3]) for step in next_steps(["staging"], pipeline=False)]
    assert steps == ["make diff STAGE=staging", "make deploy STAGE=staging", "make test lint,"]
