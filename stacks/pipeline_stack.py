"""The delivery pipeline: CDK Pipelines on CodePipeline, testing every change and promoting it stage by stage.

Source -> Build (install from lock files, `make test`, `make synth`) -> UpdatePipeline (self-mutation)
-> Assets -> one CodePipeline stage per configured stage, in the configured order. A stage marked
``manual_approval`` waits for a human before it deploys; after each deploy a CodeBuild step runs the
stage's smoke check and fails the stage on error.
"""

from __future__ import annotations

from typing import Any, cast

from aws_cdk import CfnElement, CfnResource, Duration, Environment, Stack, Tags, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_iam as iam
from constructs import Construct

from config import StageConfig
from config.pipeline import PipelineConfig, PipelineStageConfig
from constructs_lib.nag import acknowledge
from stacks.inference_stage import InferenceStage
from stacks.smoke_check_stack import SMOKE_STEP_TAG, trigger_role_path

BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
# CodeBuild's standard:7.0 image activates Node 18 unless a buildspec asks otherwise (its Dockerfile
# runs `n $NODE_18_VERSION`); it offers nodejs 18/20 and python 3.11/3.12 (its runtimes.yml). The
# project needs Node 20 (jsii, the CDK CLI) and the Python of pyproject.toml (3.11).
RUNTIME_VERSIONS = {"nodejs": "20", "python": "3.11"}
CODESTAR_CONNECTIONS_PREFIX = "codestar-connections"
CODECONNECTIONS_PREFIX = "codeconnections"
SYNTH_COMMANDS = ("make install", "make test", "make synth")
"""What a developer runs: install from the lock files, the whole test suite, then synth (+ cdk-nag gate)."""
SMOKE_CHECK_COMMANDS = ("bash tools/start_smoke_check.sh",)
SMOKE_CHECK_START_MINUTES = 10
"""Time for the stage's CodeBuild project to get an ENI and install kubectl before the check proper."""


def connection_service(arn: str) -> str:
    """The service part of a connection ARN (``codeconnections`` or ``codestar-connections``)."""
    return arn.split(":")[2]


class PipelineStack(Stack):
    """Exposes ``pipeline`` (the CodePipeline construct) and ``stages`` ({name: InferenceStage})."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        pipeline_config: PipelineConfig,
        stage_configs: dict[str, StageConfig],
        **kwargs: Any,
    ) -> None:
        env = Environment(account=pipeline_config.account, region=pipeline_config.region)
        super().__init__(scope, id_, env=env, **kwargs)
        source = self._source(pipeline_config)
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline_config.pipeline_name,
            synth=pipelines.CodeBuildStep(
                "Synth",
                input=source,
                commands=list(SYNTH_COMMANDS),
                primary_output_directory="cdk.out",
            ),
            cli_version=pipeline_config.cdk_cli_version,
            cdk_assets_cli_version=pipeline_config.cdk_assets_version,
            self_mutation=True,
            cross_account_keys=True,
            enable_key_rotation=True,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(build_image=BUILD_IMAGE),
                partial_build_spec=codebuild.BuildSpec.from_object(
                    {"phases": {"install": {"runtime-versions": dict(RUNTIME_VERSIONS)}}}
                ),
            ),
            # The test suite synthesises every stage and the pipeline (jsii + Node): 7 GB, not 3.
            synth_code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(compute_type=codebuild.ComputeType.MEDIUM)
            ),
        )
        self.stages: dict[str, InferenceStage] = {}
        self._smoke_check_trigger_paths: list[tuple[str, str]] = []
        self._smoke_step_roles: list[iam.Role] = []
        for stage in pipeline_config.stages:
            config = stage_configs[stage.name]
            deployed = InferenceStage(
                self, stage.name, config=config, smoke_check_trusted_account=pipeline_config.account
            )
            self.stages[stage.name] = deployed
            self.pipeline.add_stage(
                deployed,
                pre=self._approval(stage),
                post=[
                    self._smoke_check(deployed, config=config, pipeline_config=pipeline_config, source=source)
                ],
            )
        # Build now so the generated roles and buckets exist for the fixes and acknowledgements below.
        self.pipeline.build_pipeline()
        self._connection_actions_match_their_arn()
        self._acknowledge_findings()

    def _source(self, config: PipelineConfig) -> pipelines.CodePipelineSource:
        source = config.source
        if source.codecommit_repository is not None:
            repository = codecommit.Repository.from_repository_name(
                self, "Repository", source.codecommit_repository
            )
            return pipelines.CodePipelineSource.code_commit(repository, source.branch)
        # SourceConfig's validation guarantees both for a CodeConnections source.
        assert source.repository is not None
        assert source.connection_arn is not None
        return pipelines.CodePipelineSource.connection(
            source.repository, source.branch, connection_arn=source.connection_arn
        )

    def _connection_actions_match_their_arn(self) -> None:
        """Grant ``codeconnections:UseConnection`` on a ``codeconnections`` connection ARN.

        aws-cdk-lib's source action always grants ``codestar-connections:UseConnection``; IAM
        matches an action's prefix against the resource's, and "the service prefix needs to match
        that of the resource" (Developer Tools console guide, "Connections rename").
        """
        for child in self.pipeline.node.find_all():
            if not isinstance(child, iam.CfnPolicy):
                continue
            document = self.resolve(child.policy_document)
            for index, statement in enumerate(document.get("Statement", [])):
                action, resource = statement.get("Action"), statement.get("Resource")
                if (
                    action == f"{CODESTAR_CONNECTIONS_PREFIX}:UseConnection"
                    and isinstance(resource, str)
                    and connection_service(resource) == CODECONNECTIONS_PREFIX
                ):
                    child.add_property_override(
                        f"PolicyDocument.Statement.{index}.Action", f"{CODECONNECTIONS_PREFIX}:UseConnection"
                    )

    @staticmethod
    def _approval(stage: PipelineStageConfig) -> list[pipelines.Step]:
        if not stage.manual_approval:
            return []
        return [
            pipelines.ManualApprovalStep(
                f"Approve-{stage.name}",
                comment=f"Deploy to {stage.name}? The stages before it deployed and passed their "
                "smoke checks.",
            )
        ]

    def _smoke_check(
        self,
        stage: InferenceStage,
        *,
        config: StageConfig,
        pipeline_config: PipelineConfig,
        source: pipelines.CodePipelineSource,
    ) -> pipelines.CodeBuildStep:
        """Starts the stage's in-VPC smoke check through the stage's trigger role and waits for it."""
        account = config.account or pipeline_config.account
        region = config.region or pipeline_config.region
        smoke_check = stage.smoke_check
        self._smoke_check_trigger_paths.append((account, trigger_role_path(config.name)))
        # The stage's trigger role trusts only a principal with this tag (and this account).
        # Under the pipeline construct, so the acknowledgements of CDK Pipelines' grants cover it.
        role = iam.Role(
            self.pipeline,
            f"SmokeCheckStepRole-{config.name}",
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description=f"Pipeline step that starts the smoke check of stage {config.name}",
        )
        Tags.of(role).add(SMOKE_STEP_TAG, config.name)
        self._smoke_step_roles.append(role)
        return pipelines.CodeBuildStep(
            f"SmokeCheck-{config.name}",
            input=source,
            commands=list(SMOKE_CHECK_COMMANDS),
            env={"STAGE_REGION": region},
            env_from_cfn_outputs={
                "PROJECT_NAME": smoke_check.project_name_output,
                "TRIGGER_ROLE_ARN": smoke_check.trigger_role_arn_output,
            },
            # Only this stage's trigger role: a dev step cannot start prod's check.
            role_policy_statements=[
                iam.PolicyStatement(
                    actions=["sts:AssumeRole"],
                    resources=[f"arn:{self.partition}:iam::{account}:role{trigger_role_path(config.name)}*"],
                )
            ],
            timeout=Duration.minutes(smoke_check.timeout_minutes + SMOKE_CHECK_START_MINUTES),
            role=role,
        )

    def _acknowledge_findings(self) -> None:
        """Every cdk-nag finding of the pipeline stack: all come from CDK Pipelines' generated grants."""
        pipeline = self.pipeline.pipeline
        artifacts_bucket = pipeline.artifact_bucket
        acknowledge(
            artifacts_bucket,
            "AwsSolutions-S1",
            reason="Pipeline artifacts are written and read only by the pipeline's roles (bucket policy "
            "and KMS key). Object-level access is not logged: no server access logs, and no CloudTrail "
            "trail with S3 data events is part of this app (an account-level choice, docs/security.md).",
        )
        for support in pipeline.cross_region_support.values():
            acknowledge(
                support.stack,
                "AwsSolutions-S1",
                reason="The cross-region replication bucket CodePipeline needs for a stage in another "
                "region; only the pipeline's roles use it, as for the artifact bucket.",
            )
        bucket_id = self.get_logical_id(cast(CfnElement, artifacts_bucket.node.default_child))
        acknowledge(
            self.pipeline,
            "AwsSolutions-IAM5[Action::s3:Abort*]",
            "AwsSolutions-IAM5[Action::s3:DeleteObject*]",
            "AwsSolutions-IAM5[Action::s3:GetBucket*]",
            "AwsSolutions-IAM5[Action::s3:GetObject*]",
            "AwsSolutions-IAM5[Action::s3:List*]",
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            "AwsSolutions-IAM5[Action::kms:ReEncrypt*]",
            f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/*]",
            *(
                f"AwsSolutions-IAM5[Resource::arn:aws:s3:::{self.resolve(support.replication_bucket.bucket_name)}/*]"
                for support in pipeline.cross_region_support.values()
            ),
            reason="CDK Pipelines' read/write grants on the pipeline's own artifact (and replication) "
            "buckets and their KMS keys; the objects are build artifacts with generated names.",
        )
        self_mutation = self.pipeline.node.find_child("UpdatePipeline").node.find_child("SelfMutation")
        asset_role = self.pipeline.node.find_child("Assets").node.find_child("FileRole")
        acknowledge(
            pipeline.role,
            "AwsSolutions-IAM5[Resource::*]",
            reason="CodePipeline's own role uses the replication bucket's KMS key in prod's region, "
            "which CDK references by alias and so grants on '*'.",
        )
        acknowledge(
            self_mutation,
            "AwsSolutions-IAM5[Resource::*]",
            reason="Self-mutation reads stack outputs with cloudformation:DescribeStacks, which takes "
            "no narrower resource here.",
        )
        acknowledge(
            self_mutation,
            f"AwsSolutions-IAM5[Resource::arn:*:iam::{self.account}:role/*]",
            reason="Self-mutation assumes the CDK bootstrap roles; CDK Pipelines limits the statement "
            "with an iam:ResourceTag/aws-cdk:bootstrap-role condition.",
        )
        acknowledge(
            asset_role,
            "AwsSolutions-IAM5[Resource::*]",
            f"AwsSolutions-IAM5[Resource::arn:aws:logs:{self.region}:{self.account}:log-group:/aws/codebuild/*]",
            f"AwsSolutions-IAM5[Resource::arn:aws:codebuild:{self.region}:{self.account}:report-group/*]",
            reason="The asset-publishing role CDK Pipelines shares between its generated asset "
            "projects: it starts and logs those builds, whose names are generated.",
        )
        acknowledge(
            self.pipeline,
            *(
                f"AwsSolutions-IAM5[Resource::arn:{self.partition}:iam::{account}:role{path}*]"
                for account, path in self._smoke_check_trigger_paths
            ),
            reason="Each smoke-check step may assume only roles under its own stage's IAM path; the "
            "trigger role's name is generated by CloudFormation in the stage account.",
        )
        for project in self._codebuild_projects():
            logical_id = self.get_logical_id(project)
            # A smoke step's project runs as its step role, which lives outside the project's scope.
            for scope in (project.node.scope or project, *self._smoke_step_roles):
                acknowledge(
                    scope,
                    f"AwsSolutions-IAM5[Resource::arn:aws:logs:{self.region}:{self.account}:log-group:"
                    f"/aws/codebuild/<{logical_id}>:*]",
                    f"AwsSolutions-IAM5[Resource::arn:aws:codebuild:{self.region}:{self.account}:"
                    f"report-group/<{logical_id}>-*]",
                    reason="aws-cdk-lib's default CodeBuild grants, already scoped to this project's name.",
                )

    def _codebuild_projects(self) -> list[CfnResource]:
        return [
            child
            for child in self.pipeline.node.find_all()
            if isinstance(child, CfnResource) and child.cfn_resource_type == "AWS::CodeBuild::Project"
        ]
