"""Issue #14 items 5, 8, 9: the smoke-check trigger role; no implicit cluster admin for the deployer;
control-plane and kubectl provider logs under the stage's logs key and retention."""

from __future__ import annotations

import json
from typing import Any

from stacks.cluster_stack import cluster_name_for, control_plane_log_group_name
from stacks.smoke_check_stack import SMOKE_STEP_TAG
from tests.synth import PipelineSynthResult, SynthResult
from tests.templates import resources


def cluster_template(synth: SynthResult, stage: str) -> dict[str, Any]:
    return synth.templates[stage]["Cluster"]


def test_the_deployer_gets_no_bootstrap_admin(synth: SynthResult, stage: str) -> None:
    (cluster,) = resources(cluster_template(synth, stage), "AWS::EKS::Cluster").values()
    assert cluster["Properties"]["AccessConfig"]["BootstrapClusterCreatorAdminPermissions"] is False
    # The kubectl provider still reaches the API through its own access entry.
    principals = json.dumps(
        [
            entry["Properties"]["PrincipalArn"]
            for entry in resources(cluster_template(synth, stage), "AWS::EKS::AccessEntry").values()
        ]
    )
    assert "KubectlProviderHandlerServiceRole" in principals


def test_every_cluster_stack_log_group_is_encrypted_with_the_logs_key_and_kept(
    synth: SynthResult, stage: str
) -> None:
    groups = resources(cluster_template(synth, stage), "AWS::Logs::LogGroup")
    assert len(groups) == 3  # control plane + the kubectl provider's two Lambdas
    for logical_id, group in groups.items():
        key = json.dumps(group["Properties"]["KmsKeyId"])
        assert "LogsKey" in key, logical_id
        assert group["Properties"]["RetentionInDays"] == synth.configs[stage].log_retention_days, logical_id


def test_control_plane_log_group_exists_before_the_cluster(synth: SynthResult, stage: str) -> None:
    template = cluster_template(synth, stage)
    name = control_plane_log_group_name(cluster_name_for(stage))
    (group_id,) = [
        logical_id
        for logical_id, group in resources(template, "AWS::Logs::LogGroup").items()
        if group["Properties"].get("LogGroupName") == name
    ]
    (cluster,) = resources(template, "AWS::EKS::Cluster").values()
    assert group_id in cluster["DependsOn"]
    assert template["Resources"][group_id]["DeletionPolicy"] == "RetainExceptOnCreate"


def test_smoke_check_trigger_role_trusts_only_the_smoke_step_and_denies_buildspec_overrides(
    synth: SynthResult, stage: str
) -> None:
    template = synth.templates[stage]["SmokeCheck"]
    (role_id,) = [name for name in resources(template, "AWS::IAM::Role") if name.startswith("TriggerRole")]
    trust = template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    (statement,) = trust
    assert statement["Condition"] == {"StringEquals": {f"aws:PrincipalTag/{SMOKE_STEP_TAG}": stage}}
    denies = [
        s
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny"
    ]
    assert denies == [
        {
            "Sid": "NoBuildspecOverride",
            "Effect": "Deny",
            "Action": "codebuild:StartBuild",
            "Resource": "*",
            "Condition": {"Null": {"codebuild:source.buildspec": "false"}},
        }
    ]


def test_pipeline_smoke_steps_run_as_roles_tagged_for_their_stage(
    pipeline_synth: PipelineSynthResult,
) -> None:
    template = pipeline_synth.pipeline_template
    projects = resources(template, "AWS::CodeBuild::Project").values()
    for stage in pipeline_synth.config.stage_names:
        tagged = [
            logical_id
            for logical_id, role in resources(template, "AWS::IAM::Role").items()
            if {"Key": SMOKE_STEP_TAG, "Value": stage} in role["Properties"].get("Tags", [])
        ]
        assert len(tagged) == 1, stage
        # ...and that role is the one a project (the stage's smoke step) runs as.
        assert any(tagged[0] in json.dumps(project["Properties"]["ServiceRole"]) for project in projects), (
            stage
        )
