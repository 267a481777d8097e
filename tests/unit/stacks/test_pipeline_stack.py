"""The delivery pipeline: order, gates, tested synth, encryption, least-privilege roles, smoke checks.

Uses the session fixture `pipeline_synth` (the pipeline stack synthesised once) and, to compare the
pipeline's stages with hand-deployed ones, the session fixture `synth`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
import pytest

from app import PIPELINE_STACK_ID, build_app
from config import load_stages
from config.pipeline import load_pipeline
from stacks.pipeline_stack import SMOKE_CHECK_COMMANDS, SYNTH_COMMANDS
from stacks.smoke_check_stack import trigger_role_path
from tests.synth import PipelineSynthResult, SynthResult
from tests.templates import as_list, one, render, resources, role_statements

ASSET_HASH = re.compile(r"[0-9a-f]{64}")
PIPELINE_ACCOUNT = "111111111111"
BOOTSTRAP_QUALIFIER = "hnb659fds"


def _pipeline_stages(pipeline_synth: PipelineSynthResult) -> list[dict[str, Any]]:
    (pipeline,) = resources(pipeline_synth.pipeline_template, "AWS::CodePipeline::Pipeline").values()
    stages: list[dict[str, Any]] = pipeline["Properties"]["Stages"]
    return stages


def _stage(pipeline_synth: PipelineSynthResult, name: str) -> dict[str, Any]:
    return next(stage for stage in _pipeline_stages(pipeline_synth) if stage["Name"] == name)


def _project(pipeline_synth: PipelineSynthResult, action: dict[str, Any]) -> dict[str, Any]:
    logical_id = action["Configuration"]["ProjectName"]["Ref"]
    project: dict[str, Any] = pipeline_synth.pipeline_template["Resources"][logical_id]["Properties"]
    return project


def _buildspec(project: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(project["Source"]["BuildSpec"])
    return spec


def test_stages_run_in_order(pipeline_synth: PipelineSynthResult) -> None:
    names = [stage["Name"] for stage in _pipeline_stages(pipeline_synth)]
    assert names == ["Source", "Build", "UpdatePipeline", "Assets", "dev", "staging", "prod"]


def test_source_is_the_configured_connection_and_branch(pipeline_synth: PipelineSynthResult) -> None:
    (action,) = _stage(pipeline_synth, "Source")["Actions"]
    source = pipeline_synth.config.source
    assert action["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert action["Configuration"]["ConnectionArn"] == source.connection_arn
    assert action["Configuration"]["FullRepositoryId"] == source.repository
    assert action["Configuration"]["BranchName"] == source.branch


def test_manual_approval_gates_prod_and_only_prod(pipeline_synth: PipelineSynthResult) -> None:
    for name in ("dev", "staging", "prod"):
        actions = _stage(pipeline_synth, name)["Actions"]
        approvals = [action for action in actions if action["ActionTypeId"]["Category"] == "Approval"]
        if name != "prod":
            assert approvals == []
            continue
        (approval,) = approvals
        assert approval["ActionTypeId"]["Provider"] == "Manual"
        deploys = [action for action in actions if action["ActionTypeId"]["Category"] == "Deploy"]
        assert deploys
        assert all(approval["RunOrder"] < deploy["RunOrder"] for deploy in deploys)


def test_synth_installs_from_lock_files_tests_then_synthesises(pipeline_synth: PipelineSynthResult) -> None:
    (action,) = _stage(pipeline_synth, "Build")["Actions"]
    project = _project(pipeline_synth, action)
    assert project["Environment"]["ComputeType"] == "BUILD_GENERAL1_MEDIUM"  # the suite needs the memory
    spec = _buildspec(project)
    commands = spec["phases"]["build"]["commands"]
    assert commands == list(SYNTH_COMMANDS)
    assert commands.index("make install") < commands.index("make test") < commands.index("make synth")
    assert spec["artifacts"]["base-directory"] == "cdk.out"


def test_self_mutation_uses_the_pinned_cli(pipeline_synth: PipelineSynthResult) -> None:
    (action,) = _stage(pipeline_synth, "UpdatePipeline")["Actions"]
    spec = _buildspec(_project(pipeline_synth, action))
    assert spec["phases"]["install"]["commands"] == [
        f"npm install -g aws-cdk@{pipeline_synth.config.cdk_cli_version}"
    ]
    assert f"deploy {PIPELINE_STACK_ID}" in spec["phases"]["build"]["commands"][0]


def test_asset_publishing_uses_the_pinned_cdk_assets(pipeline_synth: PipelineSynthResult) -> None:
    actions = _stage(pipeline_synth, "Assets")["Actions"]
    assert actions
    for action in actions:
        install = _buildspec(_project(pipeline_synth, action))["phases"]["install"]["commands"]
        assert install == [f"npm install -g cdk-assets@{pipeline_synth.config.cdk_assets_version}"]


def test_artifact_bucket_is_kms_encrypted_with_a_rotating_key(pipeline_synth: PipelineSynthResult) -> None:
    template = pipeline_synth.pipeline_template
    (bucket,) = resources(template, "AWS::S3::Bucket").values()
    (encryption,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    key_id = encryption["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    assert template["Resources"][key_id]["Type"] == "AWS::KMS::Key"
    assert template["Resources"][key_id]["Properties"]["EnableKeyRotation"] is True
    assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())
    (pipeline,) = resources(template, "AWS::CodePipeline::Pipeline").values()
    stores = pipeline["Properties"]["ArtifactStores"]
    assert all(store["ArtifactStore"]["EncryptionKey"]["Type"] == "KMS" for store in stores)


def test_codebuild_projects_encrypt_with_the_artifact_key(pipeline_synth: PipelineSynthResult) -> None:
    projects = resources(pipeline_synth.pipeline_template, "AWS::CodeBuild::Project").values()
    assert projects
    for project in projects:
        assert project["Properties"]["EncryptionKey"]["Fn::GetAtt"][0].startswith(
            "PipelineArtifactsBucketEncryptionKey"
        )
        assert project["Properties"]["Environment"]["PrivilegedMode"] is False


@pytest.mark.parametrize(
    ("stage", "account", "region"),
    [
        ("dev", PIPELINE_ACCOUNT, "us-east-1"),
        ("staging", "222222222222", "us-east-1"),
        ("prod", "333333333333", "us-west-2"),
    ],
)
def test_each_stage_deploys_with_its_accounts_bootstrap_roles(
    pipeline_synth: PipelineSynthResult, synth: SynthResult, stage: str, account: str, region: str
) -> None:
    deploys = [
        action
        for action in _stage(pipeline_synth, stage)["Actions"]
        if action["ActionTypeId"]["Category"] == "Deploy"
    ]
    assert {action["Configuration"]["StackName"] for action in deploys} == {
        f"{stage}-{stack}" for stack in synth.templates[stage]
    }
    # dev has no account in its file: it deploys into the pipeline's own account.
    expected_account = "<Ref:AWS::AccountId>" if stage == "dev" else account
    replica = synth.stages[stage].replica
    for action in deploys:
        # A disaster-recovery Replica stack deploys to its replica region.
        is_replica = replica is not None and action["Configuration"]["StackName"] == f"{stage}-Replica"
        expected_region = replica.region if is_replica and replica is not None else region
        role = render(action["RoleArn"])
        assert role.endswith(
            f":role/cdk-{BOOTSTRAP_QUALIFIER}-deploy-role-{expected_account}-{expected_region}"
        )
        assert f":iam::{expected_account}:" in role
        assert action.get("Region", "us-east-1") == expected_region


def test_smoke_check_runs_after_every_deploy_of_each_stage(
    pipeline_synth: PipelineSynthResult, stage: str
) -> None:
    actions = _stage(pipeline_synth, stage)["Actions"]
    (smoke,) = [action for action in actions if action["Name"] == f"SmokeCheck-{stage}"]
    assert smoke["ActionTypeId"]["Provider"] == "CodeBuild"
    deploys = [action for action in actions if action["ActionTypeId"]["Category"] == "Deploy"]
    assert all(smoke["RunOrder"] > deploy["RunOrder"] for deploy in deploys)
    variables = {
        variable["name"]: variable["value"]
        for variable in json.loads(smoke["Configuration"]["EnvironmentVariables"])
    }
    assert re.fullmatch(
        r"#\{Pipeline" + stage + r"SmokeCheck[0-9A-F]{8}\.SmokeCheckProjectName\}", variables["PROJECT_NAME"]
    )
    assert re.fullmatch(
        r"#\{Pipeline" + stage + r"SmokeCheck[0-9A-F]{8}\.SmokeCheckTriggerRoleArn\}",
        variables["TRIGGER_ROLE_ARN"],
    )
    project = _project(pipeline_synth, smoke)
    assert _buildspec(project)["phases"]["build"]["commands"] == list(SMOKE_CHECK_COMMANDS)
    region = pipeline_synth.stack.stages[stage].config.region
    assert {"Name": "STAGE_REGION", "Type": "PLAINTEXT", "Value": region} in project["Environment"][
        "EnvironmentVariables"
    ]


def test_smoke_check_step_may_assume_only_its_stages_trigger_role(
    pipeline_synth: PipelineSynthResult, stage: str
) -> None:
    template = pipeline_synth.pipeline_template
    (smoke,) = [
        action
        for action in _stage(pipeline_synth, stage)["Actions"]
        if action["Name"] == f"SmokeCheck-{stage}"
    ]
    project = _project(pipeline_synth, smoke)
    statements = role_statements(template, project["ServiceRole"])
    assume = [statement for statement in statements if "sts:AssumeRole" in as_list(statement["Action"])]
    account = pipeline_synth.stack.stages[stage].config.account or PIPELINE_ACCOUNT
    assert [(as_list(statement["Action"]), render(statement["Resource"])) for statement in assume] == [
        (["sts:AssumeRole"], f"arn:aws:iam::{account}:role{trigger_role_path(stage)}*")
    ]


def test_codebuild_roles_are_least_privilege(pipeline_synth: PipelineSynthResult) -> None:
    """No admin or IAM-writing actions; only self-mutation and smoke checks assume roles, and narrowly."""
    template = pipeline_synth.pipeline_template
    for project in resources(template, "AWS::CodeBuild::Project").values():
        for statement in role_statements(template, project["Properties"]["ServiceRole"]):
            actions = as_list(statement["Action"])
            assert statement["Effect"] == "Allow"
            assert not [action for action in actions if action == "*" or action.endswith(":*")]
            assert not [
                action
                for action in actions
                if action.startswith(("iam:", "cloudformation:Create", "cloudformation:Update"))
            ]
            if "sts:AssumeRole" not in actions:
                continue
            targets = [render(resource) for resource in as_list(statement["Resource"])]
            bootstrap_roles = targets == [f"arn:*:iam::{PIPELINE_ACCOUNT}:role/*"]
            if bootstrap_roles:
                tag = statement["Condition"]["ForAnyValue:StringEquals"][
                    "iam:ResourceTag/aws-cdk:bootstrap-role"
                ]
                assert set(tag) <= {"image-publishing", "file-publishing", "deploy"}
            elif all("role/cdk-hnb659fds-file-publishing-role-" in resource for resource in targets):
                continue  # asset publishing: each target account's bootstrap file-publishing role
            else:
                assert len(targets) == 1
                assert "/llm-inference/smoke-check/" in targets[0]


def test_synth_step_cannot_assume_any_role(pipeline_synth: PipelineSynthResult) -> None:
    """Synth is deterministic (no lookups), so its role needs no access to any account's roles."""
    (action,) = _stage(pipeline_synth, "Build")["Actions"]
    project = _project(pipeline_synth, action)
    statements = role_statements(pipeline_synth.pipeline_template, project["ServiceRole"])
    assert statements
    assert not [statement for statement in statements if "sts:AssumeRole" in as_list(statement["Action"])]


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_pipeline_stage_synthesises_the_same_resources_as_a_hand_deployed_stage(
    synth: SynthResult, pipeline_synth: PipelineSynthResult, stage: str
) -> None:
    """Same InferenceStage class, same StageConfig: same stacks, logical ids and resource types."""
    # Same CloudFormation stack names too: the pipeline takes over hand-deployed stacks in place.
    hand_stage, piped_stage = synth.stages[stage], pipeline_synth.stack.stages[stage]
    for attribute in ("network", "cluster", "observability", "smoke_check"):
        assert getattr(piped_stage, attribute).stack_name == getattr(hand_stage, attribute).stack_name
    hand = synth.templates[stage]
    piped = pipeline_synth.stage_templates[stage]
    assert sorted(piped) == sorted(hand)
    for stack in hand:
        assert _ids_and_types(piped[stack]) == _ids_and_types(hand[stack]), stack


# aws-cdk-lib names the invoke permission of an EventBridge->Lambda target after the rule's full
# construct path, which includes the pipeline's scope; on takeover CloudFormation replaces just
# these permissions (create before delete). Every other logical id must match exactly.
EVENT_RULE_PERMISSION = re.compile(r"(AllowEventRule)(Pipeline)?(\w+?)[0-9A-F]{16}$")


def _ids_and_types(template: dict[str, Any]) -> dict[str, str]:
    ids = {}
    for key, value in template["Resources"].items():
        normalised = ASSET_HASH.sub("<asset-hash>", key)
        if value["Type"] == "AWS::Lambda::Permission":
            normalised = EVENT_RULE_PERMISSION.sub(r"\1\3", normalised)
        ids[normalised] = value["Type"]
    return ids


def test_pipeline_stage_uses_the_same_config_objects(pipeline_synth: PipelineSynthResult) -> None:
    configs = load_stages()
    for name, stage in pipeline_synth.stack.stages.items():
        assert stage.config == configs[name]


def test_pipeline_stages_trust_the_pipeline_account_for_the_smoke_check(
    synth: SynthResult, pipeline_synth: PipelineSynthResult, stage: str
) -> None:
    def trusted(templates: dict[str, dict[str, Any]]) -> str:
        _, trigger = one(templates["SmokeCheck"], "AWS::IAM::Role", "TriggerRole")
        (statement,) = trigger["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        return render(statement["Principal"]["AWS"])

    assert trusted(pipeline_synth.stage_templates[stage]) == f"arn:aws:iam::{PIPELINE_ACCOUNT}:root"
    own = synth.configs[stage].account or "<Ref:AWS::AccountId>"
    assert trusted(synth.templates[stage]) == f"arn:aws:iam::{own}:root"


def test_prod_in_another_region_gets_a_replication_bucket(pipeline_synth: PipelineSynthResult) -> None:
    # us-west-2 for prod, us-east-2 for prod's disaster-recovery Replica stack.
    assert sorted(name[-9:] for name in pipeline_synth.support_templates) == ["us-east-2", "us-west-2"]
    for support in pipeline_synth.support_templates.values():
        (bucket,) = resources(support, "AWS::S3::Bucket").values()
        (encryption,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"


def test_app_adds_the_pipeline_only_when_configured() -> None:
    """app.py's wiring (construct tree only, no synth): hand stages keep their ids either way."""
    stages = load_stages()
    without = cdk.App()
    build_app(without, stages)
    assert [child.node.id for child in without.node.children] == ["dev", "staging", "prod"]
    with_pipeline = cdk.App()
    build_app(with_pipeline, stages, pipeline=load_pipeline(known_stages=list(stages)))
    assert [child.node.id for child in with_pipeline.node.children] == [
        "dev",
        "staging",
        "prod",
        PIPELINE_STACK_ID,
        # CodePipeline's support stack for prod's region (artifact replication bucket).
        "cross-region-stack-111111111111:us-west-2",
        # ... and for prod's disaster-recovery replica region (its Replica stack deploys there).
        "cross-region-stack-111111111111:us-east-2",
    ]
