"""ECR pull-through cache for Docker Hub, so nodes behind a few NAT addresses do not hit Docker Hub's
anonymous pull limit (per IP) on a morning restore or Spot churn.

ECR user guide ("Creating a pull through cache rule", "Storing your upstream repository credentials"):
Docker Hub's upstream URL is ``registry-1.docker.io``; its rule needs a Secrets Manager secret in the
same account and region whose name starts with ``ecr-pullthroughcache/`` and holds ``username`` and
``accessToken``. The stack creates that secret from the operator's own secret (a deploy-time dynamic
reference: the token never enters the template or the cloud assembly). Pullers need
``ecr:BatchImportUpstreamImage`` and, for the first pull of an image, ``ecr:CreateRepository``.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, SecretValue, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from constructs_lib.addons.arns import scoped_arn
from constructs_lib.nag import acknowledge
from k8s_charts.images import DOCKER_HUB_CACHE_PREFIX

DOCKER_HUB_UPSTREAM = "registry-1.docker.io"
CREDENTIALS_SECRET_PREFIX = "ecr-pullthroughcache/"  # noqa: S105 - a name prefix ECR requires
PULL_THROUGH_ACTIONS = ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]


class DockerHubPullThroughCache(Construct):
    """Exposes ``rule`` and ``credentials`` (the ``ecr-pullthroughcache/`` copy of the operator's secret).

    :param stage: stage name, part of the copy's name.
    :param operator_secret_name: the operator's secret (``username``, ``accessToken``), same account/region.
    :param pullers: roles whose pulls may fill the cache (the node role).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        stage: str,
        operator_secret_name: str,
        pullers: list[iam.IRole],
    ) -> None:
        super().__init__(scope, id_)
        self.credentials = secretsmanager.Secret(
            self,
            "Credentials",
            # A fixed name is what ECR requires (prefix); the copy is rebuilt from the operator's
            # secret on every deploy, so nothing is lost when it is deleted.
            secret_name=f"{CREDENTIALS_SECRET_PREFIX}llm-inference-{stage}/docker-hub",
            description=f"Docker Hub credentials of stage {stage}'s ECR pull-through cache "
            f"(copied from {operator_secret_name})",
            secret_object_value={
                key: SecretValue.secrets_manager(operator_secret_name, json_field=key)
                for key in ("username", "accessToken")
            },
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.rule = ecr.CfnPullThroughCacheRule(
            self,
            "Rule",
            ecr_repository_prefix=DOCKER_HUB_CACHE_PREFIX,
            upstream_registry="docker-hub",
            upstream_registry_url=DOCKER_HUB_UPSTREAM,
            credential_arn=self.credentials.secret_arn,
        )
        cached_repositories, nag_rendering = scoped_arn(
            Stack.of(self), service="ecr", resource=f"repository/{DOCKER_HUB_CACHE_PREFIX}/*"
        )
        for role in pullers:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="FillThePullThroughCache",
                    actions=PULL_THROUGH_ACTIONS,
                    resources=[cached_repositories],
                )
            )
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{nag_rendering}]",
                reason="The cache creates one repository per Docker Hub image on its first pull; the "
                "statement covers only repositories under the cache's prefix.",
            )
        acknowledge(
            self.credentials,
            "AwsSolutions-SMG4",
            reason="A copy of the operator's Docker Hub access token, rebuilt on every deploy; the token "
            "is rotated in Docker Hub and in the operator's secret, which this copy follows.",
        )
