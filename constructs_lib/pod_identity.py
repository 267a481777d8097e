"""An IAM role for one Kubernetes service account, bound through EKS Pod Identity."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_eks as eks_l1
from aws_cdk import aws_iam as iam
from constructs import Construct

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


def _pod_identity_principal(
    scope: Construct, *, cluster_name: str, namespace: str, service_account: str
) -> iam.IPrincipal:
    """EKS Pod Identity, only for one service account of one cluster in this account.

    Pod Identity tags its STS session with the cluster name, namespace and service account
    (EKS user guide, pod-id-role and pod-id-abac); without these conditions any association in
    the account could name this role. sts:TagSession comes with the session tags.
    """
    conditions = {
        "StringEquals": {
            "aws:SourceAccount": Stack.of(scope).account,
            "aws:RequestTag/eks-cluster-name": cluster_name,
            "aws:RequestTag/kubernetes-namespace": namespace,
            "aws:RequestTag/kubernetes-service-account": service_account,
        }
    }
    return iam.SessionTagsPrincipal(iam.ServicePrincipal(POD_IDENTITY_PRINCIPAL).with_conditions(conditions))


class PodIdentityRole(Construct):
    """Role that only EKS Pod Identity can assume, associated with ``namespace/service_account``.

    The one way a pod gets AWS permissions here. Exposes ``role`` and ``association``. The service
    account itself is created by whoever owns it (usually the Helm chart); the association may exist
    before it, and a chart that runs as the account must wait for it (``addons.helm.HelmAddon``).

    :param statements: the role's whole permission set, as one inline policy. Default: none (add
        statements later with ``role.add_to_policy``, which makes a separate policy resource).
    :param policy_name: name of that inline policy. Default: ``Permissions``.
    :param managed_policies: AWS-managed policies to attach. Default: none.
    :param description: the role's description. Default: ``Pod Identity role of <namespace>/<account>``.
    :param association_id: construct id of the association. Default: ``Association``; another only
        where a resource created before this construct existed keeps its logical id.
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
        policy_name: str = "Permissions",
        managed_policies: Sequence[iam.IManagedPolicy] = (),
        description: str | None = None,
        association_id: str = "Association",
    ) -> None:
        super().__init__(scope, id_)
        self.role = iam.Role(
            self,
            "Role",
            description=description or f"Pod Identity role of {namespace}/{service_account}",
            assumed_by=_pod_identity_principal(
                self, cluster_name=cluster_name, namespace=namespace, service_account=service_account
            ),
            inline_policies=(
                {policy_name: iam.PolicyDocument(statements=list(statements))} if statements else None
            ),
            managed_policies=list(managed_policies) or None,
        )
        self.association = eks_l1.CfnPodIdentityAssociation(
            self,
            association_id,
            cluster_name=cluster_name,
            namespace=namespace,
            service_account=service_account,
            role_arn=self.role.role_arn,
        )
