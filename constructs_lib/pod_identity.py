"""An IAM role for one Kubernetes service account, bound through EKS Pod Identity."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_eks as eks_l1
from aws_cdk import aws_iam as iam
from constructs import Construct

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


class PodIdentityRole(Construct):
    """Role that only EKS Pod Identity can assume, associated with ``namespace/service_account``.

    Exposes ``role`` and ``association``. The service account itself is created by whoever owns
    it (usually the Helm chart); the association may exist before it.

    :param statements: the role's whole permission set, as one inline policy.
    :param managed_policies: AWS-managed policies to attach. Default: none.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster_name: str,
        namespace: str,
        service_account: str,
        statements: Sequence[iam.PolicyStatement] = (),
        managed_policies: Sequence[iam.IManagedPolicy] = (),
    ) -> None:
        super().__init__(scope, id_)
        self.role = iam.Role(
            self,
            "Role",
            description=f"Pod Identity role of {namespace}/{service_account}",
            # Pod Identity tags the session with cluster, namespace and service account.
            assumed_by=iam.SessionTagsPrincipal(iam.ServicePrincipal(POD_IDENTITY_PRINCIPAL)),
            inline_policies=(
                {"Permissions": iam.PolicyDocument(statements=list(statements))} if statements else None
            ),
            managed_policies=list(managed_policies) or None,
        )
        self.association = eks_l1.CfnPodIdentityAssociation(
            self,
            "Association",
            cluster_name=cluster_name,
            namespace=namespace,
            service_account=service_account,
            role_arn=self.role.role_arn,
        )
