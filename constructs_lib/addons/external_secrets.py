"""External Secrets Operator: copies the model API key from Secrets Manager into a Kubernetes Secret.

Chart 2.9.0 (app v2.9.0) from https://charts.external-secrets.io, tag helm-chart-2.9.0 of
github.com/external-secrets/external-secrets. Its AWS provider uses the SDK's default credential
chain when a SecretStore names no `auth` ("Controller's Pod Identity" in the ESO AWS docs), so the
controller's EKS Pod Identity role is the only credential, and it may read the listed secrets only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from constructs_lib.addons.helm import SYSTEM_NODES, HelmAddon, HelmSource

CONTROLLER_SERVICE_ACCOUNT = "external-secrets"
SOURCE = HelmSource(
    chart="external-secrets",
    repository="https://charts.external-secrets.io",
    version="2.9.0",
    namespace="external-secrets",
    release="external-secrets",
)
SECRET_READ_ACTIONS = (
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
    "secretsmanager:ListSecretVersionIds",
)


def values() -> dict[str, Any]:
    return {
        "installCRDs": True,
        "serviceAccount": {"create": True, "name": CONTROLLER_SERVICE_ACCOUNT},
        # Only namespaced SecretStores and ExternalSecrets: a cluster-wide store would let any
        # namespace's ExternalSecret read what the controller's role can read.
        "processClusterStore": False,
        "processClusterExternalSecret": False,
        "processClusterPushSecret": False,
        "processPushSecret": False,
        "nodeSelector": SYSTEM_NODES,
        "webhook": {"nodeSelector": SYSTEM_NODES},
        "certController": {"nodeSelector": SYSTEM_NODES},
    }


class ExternalSecrets(HelmAddon):
    """Exposes ``chart`` and ``identity``.

    :param secrets: the Secrets Manager secrets the controller may read, and nothing else.
    :param secrets_key: the KMS key those secrets are encrypted with (decrypt through Secrets
        Manager only).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster: eks.ICluster,
        cluster_name: str,
        secrets: Sequence[secretsmanager.ISecret],
        secrets_key: kms.IKey,
    ) -> None:
        super().__init__(scope, id_, source=SOURCE)
        region = Stack.of(self).region
        self._pod_identity(
            cluster_name=cluster_name,
            service_account=CONTROLLER_SERVICE_ACCOUNT,
            statements=[
                iam.PolicyStatement(
                    sid="ReadTheListedSecrets",
                    actions=list(SECRET_READ_ACTIONS),
                    resources=[secret.secret_arn for secret in secrets],
                ),
                iam.PolicyStatement(
                    sid="DecryptThroughSecretsManager",
                    actions=["kms:Decrypt"],
                    resources=[secrets_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
                ),
            ],
        )
        self._install(cluster=cluster, values=values())
