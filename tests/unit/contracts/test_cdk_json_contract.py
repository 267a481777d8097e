"""cdk.json holds CLI settings where the CLI reads them, so tests and `cdk synth` make the same templates.

The CDK CLI warns about, and does not honour, reserved ``aws:`` keys in ``context``; version
reporting is the top-level ``versionReporting`` setting (aws-cdk CLI: warnAboutContextKey and
contextFromSettings).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.synth import SynthResult

CDK_JSON = Path(__file__).resolve().parents[3] / "cdk.json"


def test_no_reserved_context_keys() -> None:
    context = json.loads(CDK_JSON.read_text())["context"]
    assert [key for key in context if key.startswith("aws:")] == []


def test_version_reporting_is_a_top_level_setting_and_off() -> None:
    assert json.loads(CDK_JSON.read_text())["versionReporting"] is False


def test_templates_carry_no_version_metadata(synth: SynthResult, stage: str) -> None:
    """What the CLI produces with versionReporting false; the tests' synth must match it."""
    for stack, template in synth.templates[stage].items():
        kinds = {resource["Type"] for resource in template["Resources"].values()}
        assert "AWS::CDK::Metadata" not in kinds, stack
