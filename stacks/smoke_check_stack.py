"""The stage's post-deploy smoke check: a CodeBuild project inside the VPC with read-only cluster access.

The cluster endpoint and the dev/staging load balancers are private, so the check has to run inside
the stage's VPC, which only a project in the stage's own account can do. The pipeline (another
account) starts it through ``trigger_role``; a hand deploy starts it with
``aws codebuild start-build --project-name <SmokeCheckProjectName output>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from aws_cdk import CfnElement, CfnOutput, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from config import StageConfig
from config.kubernetes_releases import KUBECTL_VERSION
from config.serving import UNKNOWN_MODEL_PROBE
from constructs_lib.nag import acknowledge
from constructs_lib.retention import retention
from contract.kubernetes import MODELS_NAMESPACE
from k8s_charts.model_gateway import ENVOY_POD_LABELS
from stacks.cluster_stack import ClusterHandle

SCRIPT_DIR = Path(__file__).resolve().parent.parent / "tools" / "smoke_check"
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
# Model loading dominates: the slowest version's startup budget plus time for the HTTP checks.
HTTP_CHECK_MINUTES = 15


SMOKE_STEP_TAG = "llm-inference:smoke-step"
"""Tag on the pipeline's smoke step role; its value is the stage whose trigger role it may assume.
(Not an IAM path: CodeBuild names its service role by name, which a path would break.)"""


def trigger_role_path(stage: str) -> str:
    """IAM path of the stage's trigger role; the pipeline's step may assume roles under it only."""
    return f"/llm-inference/smoke-check/{stage}/"


class SmokeCheckStack(Stack):
    """Exposes ``project``, ``timeout_minutes``, ``trigger_role`` and the outputs ``project_name_output`` and
    ``trigger_role_arn_output`` that the pipeline's post-deploy step reads.

    :param trusted_account: account whose principals may assume ``trigger_role`` to start the
        check (the pipeline account). Default: the stage's own account.
    :param api_key_secret: the stage's model API key, which the check sends on /v1/*. Default:
        None (the stage's API needs no key).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: StageConfig,
        vpc: ec2.IVpc,
        cluster: ClusterHandle,
        logs_key: kms.IKey,
        trusted_account: str | None = None,
        api_key_secret: secretsmanager.ISecret | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        # CodeBuild reads the key from Secrets Manager into the build's environment and masks it
        # in the build logs; the buildspec holds only the secret's ARN.
        secrets = {"API_KEY": api_key_secret.secret_arn} if api_key_secret is not None else {}
        log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=logs_key,
            retention=retention(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Smoke check: HTTPS out (EKS API, AWS APIs, kubectl download), HTTP to the VPC",
            allow_all_outbound=False,
        )
        security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS")
        security_group.add_egress_rule(
            ec2.Peer.ipv4(vpc.vpc_cidr_block), ec2.Port.tcp(80), "HTTP to internal load balancers"
        )
        # The private API endpoint must admit the check. The rule lives here (a rule in the cluster's
        # stack would make a cycle) with a stable id (connections.allow_to would put the stage's path
        # into the logical id, so pipeline and hand-deployed stages would differ).
        ec2.CfnSecurityGroupIngress(
            self,
            "ClusterApiIngress",
            group_id=cluster.security_group_id,
            source_security_group_id=security_group.security_group_id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="Smoke check to the EKS API",
        )
        script = s3_assets.Asset(self, "Script", path=str(SCRIPT_DIR))
        startup_minutes = max(
            (version.startup_timeout_minutes for model in config.models for version in model.versions),
            default=0,
        )
        self.timeout_minutes = startup_minutes + HTTP_CHECK_MINUTES
        served_names = [model.versions[0].served_model_name for model in config.models]
        model_routing = (
            {
                # What the gateway routes on (k8s_charts/model_gateway.py matches versions[0]'s name;
                # every version of a model serves the same one). Config refuses whitespace in it.
                "SERVED_MODEL_NAMES": " ".join(served_names),
                "UNKNOWN_MODEL": UNKNOWN_MODEL_PROBE,
                # Envoy Gateway labels the proxy's Deployment as its pods; it picks the name.
                "GATEWAY_SELECTOR": ",".join(f"{key}={value}" for key, value in ENVOY_POD_LABELS.items()),
            }
            if config.ingress.routing_mode == "model"
            else {}
        )
        self.project = codebuild.Project(
            self,
            "Project",
            description=f"Post-deploy smoke check of stage {config.name}",
            source=codebuild.Source.s3(bucket=script.bucket, path=script.s3_object_key),
            vpc=vpc,
            subnet_selection=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[security_group],
            environment=codebuild.BuildEnvironment(
                build_image=BUILD_IMAGE, compute_type=codebuild.ComputeType.SMALL
            ),
            encryption_key=logs_key,
            timeout=Duration.minutes(self.timeout_minutes),
            logging=codebuild.LoggingOptions(
                cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=log_group)
            ),
            build_spec=codebuild.BuildSpec.from_object(
                {
                    "version": "0.2",
                    "env": {
                        "variables": {
                            "CLUSTER_NAME": cluster.name,
                            "NAMESPACE": MODELS_NAMESPACE,
                            "MODEL_IDS": " ".join(model.id for model in config.models),
                            "ROLLOUT_TIMEOUT": f"{startup_minutes}m" if startup_minutes else "5m",
                            "INGRESS_DOMAIN": config.ingress.domain or "",
                            # The mode the charts route by (k8s_charts/model_ingress.py), resolved once.
                            "ROUTING_MODE": config.ingress.routing_mode,
                            **model_routing,
                        },
                        **({"secrets-manager": secrets} if secrets else {}),
                    },
                    "phases": {
                        "install": {
                            "commands": [
                                "curl -fsSLO https://dl.k8s.io/release/"
                                f"{KUBECTL_VERSION}/bin/linux/amd64/kubectl",
                                "curl -fsSLO https://dl.k8s.io/release/"
                                f"{KUBECTL_VERSION}/bin/linux/amd64/kubectl.sha256",
                                'echo "$(cat kubectl.sha256)  kubectl" | sha256sum --check',
                                "install -m 0755 kubectl /usr/local/bin/kubectl",
                            ]
                        },
                        "build": {"commands": ["bash smoke_check.sh"]},
                    },
                }
            ),
        )
        project_role = self.project.role
        assert project_role is not None  # a Project without an explicit role always creates one
        # update-kubeconfig reads the endpoint and CA; Kubernetes rights come from the access entry.
        project_role.add_to_principal_policy(
            iam.PolicyStatement(actions=["eks:DescribeCluster"], resources=[cluster.cluster.cluster_arn])
        )
        if api_key_secret is not None:
            # Not grant_read: that edits the key's policy in the serving stack and makes a cycle.
            project_role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="ReadTheApiKey",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=[api_key_secret.secret_arn],
                )
            )
            if api_key_secret.encryption_key is not None:
                project_role.add_to_principal_policy(
                    iam.PolicyStatement(
                        sid="DecryptTheApiKey",
                        actions=["kms:Decrypt"],
                        resources=[api_key_secret.encryption_key.key_arn],
                        conditions={
                            "StringEquals": {"kms:ViaService": f"secretsmanager.{self.region}.amazonaws.com"}
                        },
                    )
                )
        self.access_entry = eks.AccessEntry(
            self,
            "AccessEntry",
            cluster=cluster.cluster,
            principal=project_role.role_arn,
            access_policies=[
                eks.AccessPolicy.from_access_policy_name(
                    "AmazonEKSViewPolicy",
                    access_scope_type=eks.AccessScopeType.NAMESPACE,
                    namespaces=[MODELS_NAMESPACE],
                )
            ],
        )

        trusted = trusted_account or self.account
        self.trigger_role = iam.Role(
            self,
            "TriggerRole",
            path=trigger_role_path(config.name),
            # Not the whole account: only the pipeline's smoke step role for this stage.
            assumed_by=iam.AccountPrincipal(trusted).with_conditions(
                {"StringEquals": {f"aws:PrincipalTag/{SMOKE_STEP_TAG}": config.name}}
            ),
            description=f"Starts and watches the smoke check of stage {config.name}; nothing else",
        )
        self.trigger_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["codebuild:StartBuild", "codebuild:BatchGetBuilds"],
                resources=[self.project.project_arn],
            )
        )
        # The build runs in the stage's VPC with cluster read access: its commands are the project's
        # own, never a buildspec the caller sends (CodeBuild user guide, action-context-keys).
        self.trigger_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="NoBuildspecOverride",
                effect=iam.Effect.DENY,
                actions=["codebuild:StartBuild"],
                resources=["*"],
                conditions={"Null": {"codebuild:source.buildspec": "false"}},
            )
        )
        self.trigger_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:GetLogEvents"],
                # The group's ARN ends in ":*", which covers its log streams.
                resources=[log_group.log_group_arn],
            )
        )
        self._acknowledge_findings(log_group)
        self.project_name_output = CfnOutput(self, "SmokeCheckProjectName", value=self.project.project_name)
        self.trigger_role_arn_output = CfnOutput(
            self, "SmokeCheckTriggerRoleArn", value=self.trigger_role.role_arn
        )

    def _acknowledge_findings(self, log_group: logs.ILogGroup) -> None:
        """Every cdk-nag finding this stack accepts, with its reason."""
        account = "<AWS::AccountId>" if Token.is_unresolved(self.account) else self.account
        region = "<AWS::Region>" if Token.is_unresolved(self.region) else self.region
        project = f"<{self.get_logical_id(cast(CfnElement, self.project.node.default_child))}>"
        acknowledge(
            self.project,
            "AwsSolutions-IAM5[Resource::*]",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:"
            "network-interface/*]",
            reason="The statement aws-cdk-lib's CodeBuild Project writes for a build in a VPC: "
            "ec2:CreateNetworkInterface and ec2:DeleteNetworkInterface on any ENI of the account "
            "(the project cannot name ENIs it has not created yet), plus VPC, subnet, security group, "
            "DHCP options and ENI Describe calls, which take no resource. Only "
            "ec2:CreateNetworkInterfacePermission is conditioned on this project's subnets and "
            "codebuild.amazonaws.com.",
        )
        acknowledge(
            self.project,
            f"AwsSolutions-IAM5[Resource::arn:aws:logs:{region}:{account}:log-group:/aws/codebuild/"
            f"{project}:*]",
            f"AwsSolutions-IAM5[Resource::arn:aws:codebuild:{region}:{account}:report-group/{project}-*]",
            reason="aws-cdk-lib's default CodeBuild grants, already scoped to this project's name.",
        )
        acknowledge(
            self.project,
            "AwsSolutions-IAM5[Action::s3:GetObject*]",
            "AwsSolutions-IAM5[Action::s3:GetBucket*]",
            "AwsSolutions-IAM5[Action::s3:List*]",
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            "AwsSolutions-IAM5[Action::kms:ReEncrypt*]",
            reason="aws-cdk-lib's read grant on the script asset (scoped to its object key) and its "
            "encrypt/decrypt grant on the stage's logs key for the build's logs.",
        )
