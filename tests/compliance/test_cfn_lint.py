"""cfn-lint finds no errors or warnings in any template of any stage.

Each template is linted once and both severities are checked on that one result: linting is the
slowest part of the suite, and a second pass per severity found nothing the first had not."""

from __future__ import annotations

import json

from cfnlint.api import ManualArgs, lint

from tests.synth import PipelineSynthResult, SynthResult

IGNORED_CHECKS: dict[str, str] = {
    # Every ignored check is listed here with its reason.
    "W3010": "Availability zones are chosen per stage in config/<stage>.yaml on purpose: "
    "subnets stay deterministic and reviewable, and synth needs no AZ lookup.",
    "W3005": "aws-cdk-lib's own custom-resource providers (VPC default security group, kubectl) "
    "declare a DependsOn that a GetAtt already implies; redundant, not wrong, and not ours to edit.",
}


SEVERITIES = ("error", "warning")


def test_templates_have_no_cfn_lint_findings(synth: SynthResult, stage: str) -> None:
    region = synth.configs[stage].region or "us-east-1"
    findings = []
    for stack, template in synth.templates[stage].items():
        matches = lint(
            json.dumps(template),
            regions=[region],
            config=ManualArgs(ignore_checks=list(IGNORED_CHECKS)),
        )
        findings += [
            f"{stack}: {match.rule.severity} {match.rule.id} {match.message} "
            f"at {'/'.join(map(str, match.path))}"
            for match in matches
            if match.rule.severity in SEVERITIES
        ]
    assert findings == []


PIPELINE_IGNORED_CHECKS: dict[str, str] = {
    **IGNORED_CHECKS,
    "E3703": "Its IAM-role-ARN format check reports CDK Pipelines' deploy-action RoleArn, an "
    "Fn::Join of the stage account's bootstrap role name, only as 'prefer Fn::Sub'; the ARN is valid.",
}


def test_pipeline_templates_have_no_cfn_lint_findings(pipeline_synth: PipelineSynthResult) -> None:
    templates = {"Pipeline": (pipeline_synth.pipeline_template, pipeline_synth.config.region)}
    for name, template in pipeline_synth.support_templates.items():
        templates[name] = (template, name.rsplit("_", 1)[-1])
    findings = []
    for name, (template, region) in templates.items():
        matches = lint(
            json.dumps(template),
            regions=[region],
            config=ManualArgs(ignore_checks=list(PIPELINE_IGNORED_CHECKS)),
        )
        findings += [
            f"{name}: {match.rule.severity} {match.rule.id} {match.message} "
            f"at {'/'.join(map(str, match.path))}"
            for match in matches
            # E3703 is reported through the nested format check, which ignore_checks does not filter.
            if match.rule.severity in SEVERITIES and match.rule.id not in PIPELINE_IGNORED_CHECKS
        ]
    assert findings == []
