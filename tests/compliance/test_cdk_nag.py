"""cdk-nag AwsSolutions runs as a validation plugin and every finding is acknowledged with a reason."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from tests.synth import PipelineSynthResult, SynthResult
from tools.synth_summary import validation_violations


def test_no_unacknowledged_findings_in_any_stage(synth: SynthResult) -> None:
    assert synth.nag_violations == []


def test_the_gate_reports_an_unacknowledged_finding(tmp_path: Path) -> None:
    """Proves the check above can fail: synth of a bucket without access logs stops with the finding."""
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Probe")
    s3.Bucket(stack, "Plain")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="server access logs disabled"):
        app.synth()
    assert any("AwsSolutions-S1" in violation for violation in validation_violations(tmp_path))


def test_no_unacknowledged_findings_in_the_pipeline(pipeline_synth: PipelineSynthResult) -> None:
    assert pipeline_synth.nag_violations == []
