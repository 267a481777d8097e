"""cfn-lint finds no errors or warnings in any template of any stage."""

from __future__ import annotations

import json

import pytest
from cfnlint.api import ManualArgs, lint

from tests.synth import SynthResult

IGNORED_CHECKS: dict[str, str] = {
    # Every ignored check is listed here with its reason.
    "W3010": "Availability zones are chosen per stage in config/<stage>.yaml on purpose: "
    "subnets stay deterministic and reviewable, and synth needs no AZ lookup.",
    "W3005": "aws-cdk-lib's own custom-resource providers (VPC default security group, kubectl) "
    "declare a DependsOn that a GetAtt already implies; redundant, not wrong, and not ours to edit.",
}


@pytest.mark.parametrize("level", ["error", "warning"])
def test_templates_have_no_cfn_lint_findings(synth: SynthResult, stage: str, level: str) -> None:
    region = synth.configs[stage].region or "us-east-1"
    findings = []
    for stack, template in synth.templates[stage].items():
        matches = lint(
            json.dumps(template),
            regions=[region],
            config=ManualArgs(ignore_checks=list(IGNORED_CHECKS)),
        )
        findings += [
            f"{stack}: {match.rule.id} {match.message} at {'/'.join(map(str, match.path))}"
            for match in matches
            if match.rule.severity == level
        ]
    assert findings == []
