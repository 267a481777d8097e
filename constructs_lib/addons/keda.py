"""KEDA: serves each model's queue depth from Managed Prometheus to its HPA (SigV4 via Pod Identity)."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_aps as aps
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from constructs_lib.addons.helm import SYSTEM_NODES, HelmAddon, HelmSource
from contract.kubernetes import KEDA_AUTHENTICATION

OPERATOR_SERVICE_ACCOUNT = "keda-operator"
SOURCE = HelmSource(
    chart="keda",
    repository="https://kedacore.github.io/charts",
    version="2.18.1",
    namespace="keda",
    release="keda",
)


def values() -> dict[str, Any]:
    return {
        "serviceAccount": {"operator": {"create": True, "name": OPERATOR_SERVICE_ACCOUNT}},
        # Pod Identity, not IRSA: the operator's default AWS credential chain finds the agent.
        "podIdentity": {"aws": {"irsa": {"enabled": False}}},
        "nodeSelector": SYSTEM_NODES,
        "priorityClassName": "system-cluster-critical",
    }


def cluster_trigger_authentication() -> dict[str, Any]:
    """The authentication every ScaledObject names: the operator's own (Pod Identity) credentials."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ClusterTriggerAuthentication",
        "metadata": {"name": KEDA_AUTHENTICATION},
        "spec": {"podIdentity": {"provider": "aws"}},
    }


class Keda(HelmAddon):
    """Exposes ``chart``, ``identity`` and ``trigger_authentication``.

    :param workspace: the AMP workspace the operator may query, and nothing else.
    """

    def __init__(
        self, scope: Construct, id_: str, *, cluster: eks.ICluster, workspace: aps.CfnWorkspace
    ) -> None:
        super().__init__(scope, id_, source=SOURCE)
        self._pod_identity(
            cluster_name=cluster.cluster_name,
            service_account=OPERATOR_SERVICE_ACCOUNT,
            statements=[
                iam.PolicyStatement(
                    sid="QueryTheStageWorkspace",
                    actions=["aps:QueryMetrics"],
                    resources=[workspace.attr_arn],
                )
            ],
        )
        self._install(cluster=cluster, values=values())
        self.trigger_authentication = eks.KubernetesManifest(
            self,
            "ClusterTriggerAuthentication",
            cluster=cluster,
            manifest=[cluster_trigger_authentication()],
            overwrite=True,
        )
        # The CRD comes with the chart.
        self.trigger_authentication.node.add_dependency(self.chart)
