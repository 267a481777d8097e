"""EKS managed add-ons (VPC CNI, CoreDNS, kube-proxy, Pod Identity agent, EBS CSI) at pinned versions."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from config.cluster import REQUIRED_ADDONS
from constructs_lib.nag import acknowledge
from constructs_lib.pod_identity import PodIdentityRole

EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
EBS_CSI_POLICY = "service-role/AmazonEBSCSIDriverPolicy"
ADDON_CONFIGURATION: dict[str, dict[str, str]] = {
    # Without it the VPC CNI enforces no NetworkPolicy at all. The key and its string value are
    # the aws-vpc-cni chart's (charts/aws-vpc-cni/values.yaml at v1.20.4: enableNetworkPolicy:
    # "false"), which the add-on's configuration schema mirrors. Standard mode: a pod no policy
    # selects keeps all traffic; `models` has a default-deny policy.
    "vpc-cni": {"enableNetworkPolicy": "true"},
}


class EksManagedAddons(Construct):
    """Exposes ``addons`` (name -> Addon) and ``ebs_csi_identity``.

    :param versions: a pinned version for every name in config.cluster.REQUIRED_ADDONS.
    """

    def __init__(
        self, scope: Construct, id_: str, *, cluster: eks.ICluster, versions: Mapping[str, str]
    ) -> None:
        super().__init__(scope, id_)
        self.ebs_csi_identity = PodIdentityRole(
            self,
            "EbsCsiIdentity",
            cluster_name=cluster.cluster_name,
            namespace="kube-system",
            service_account=EBS_CSI_SERVICE_ACCOUNT,
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(EBS_CSI_POLICY)],
        )
        acknowledge(
            self.ebs_csi_identity.role,
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{EBS_CSI_POLICY}]",
            reason="The EBS CSI driver's AWS-managed policy, scoped by tag conditions to volumes the "
            "driver creates; AWS updates it with the driver.",
        )
        self.addons: dict[str, eks.Addon] = {}
        for name in REQUIRED_ADDONS:
            addon = eks.Addon(
                self,
                name,
                cluster=cluster,
                addon_name=name,
                addon_version=versions[name],
                preserve_on_delete=True,
                configuration_values=ADDON_CONFIGURATION.get(name),
            )
            # EKS installed self-managed copies of vpc-cni, coredns and kube-proxy with the cluster.
            cfn = addon.node.default_child
            assert cfn is not None
            cfn.add_property_override("ResolveConflicts", "OVERWRITE")  # type: ignore[attr-defined]
            self.addons[name] = addon
        self.addons["aws-ebs-csi-driver"].node.add_dependency(self.ebs_csi_identity.association)
