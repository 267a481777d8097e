"""The AWS Load Balancer Controller: Helm release plus its EKS Pod Identity role.

iam_policy_v2.8.2.json is the controller's published policy for v2.8.2
(github.com/kubernetes-sigs/aws-load-balancer-controller/blob/v2.8.2/docs/install/iam_policy.json),
copied from aws-cdk-lib 2.275.0 (aws-eks-v2/lib/addons/alb-iam_policy-v2.8.2.json), which ships it
for its AlbController construct. That construct is not used because it binds the role through IRSA
(an OIDC provider in the cluster stack and a cross-stack Fn::GetStackOutput cfn-lint rejects).
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from constructs_lib.addons.alb_controller.scoped_policy import BROAD, scoped_policy
from constructs_lib.addons.helm import SYSTEM_NODES, HelmAddon, HelmSource
from constructs_lib.nag import acknowledge
from constructs_lib.pod_identity import PodIdentityRole

CONTROLLER_VERSION = "v2.8.2"
SOURCE = HelmSource(
    chart="aws-load-balancer-controller",
    repository="https://aws.github.io/eks-charts",
    version="1.8.2",  # the eks-charts release that ships CONTROLLER_VERSION
    namespace="kube-system",
    release="aws-load-balancer-controller",
)
SERVICE_ACCOUNT = "aws-load-balancer-controller"
POLICY_FILE = Path(__file__).with_name(f"iam_policy_{CONTROLLER_VERSION}.json")
# Resource wildcards of the published policy (it names the aws partition literally).
POLICY_WILDCARDS = (
    "*",
    "arn:aws:ec2:*:*:security-group/*",
    "arn:aws:elasticloadbalancing:*:*:listener-rule/app/*/*/*",
    "arn:aws:elasticloadbalancing:*:*:listener-rule/net/*/*/*",
    "arn:aws:elasticloadbalancing:*:*:listener/app/*/*/*",
    "arn:aws:elasticloadbalancing:*:*:listener/net/*/*/*",
    "arn:aws:elasticloadbalancing:*:*:loadbalancer/app/*/*",
    "arn:aws:elasticloadbalancing:*:*:loadbalancer/net/*/*",
    "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*",
    # Narrowed (scoped_policy.py): the controller's own k8s-* load balancers, listeners and rules.
    "arn:aws:elasticloadbalancing:*:*:loadbalancer/app/k8s-*/*",
    "arn:aws:elasticloadbalancing:*:*:listener/app/k8s-*/*/*",
    "arn:aws:elasticloadbalancing:*:*:listener-rule/app/k8s-*/*/*/*",
)


def controller_values(*, cluster_name: str, region: str, vpc_id: str) -> dict[str, object]:
    """Helm values: region and VPC given, so the controller never needs IMDS (hop limit 1)."""
    return {
        "clusterName": cluster_name,
        "region": region,
        "vpcId": vpc_id,
        "replicaCount": 2,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        # Only Ingresses are ours; Services of type LoadBalancer keep the in-tree behaviour.
        "enableServiceMutatorWebhook": False,
        # WAFv2 only (the edge web ACL); no WAF Classic, no Shield Advanced: their permissions are
        # removed from the role (scoped_policy.py).
        "enableWafv2": True,
        "enableWaf": False,
        "enableShield": False,
        "podDisruptionBudget": {"maxUnavailable": 1},
        "nodeSelector": SYSTEM_NODES,
    }


class AlbControllerAddon(HelmAddon):
    """Exposes ``chart`` and ``identity``.

    Props:
        cluster: the cluster to install into (its kubectl provider applies the release).
        cluster_name: the cluster's literal name.
        vpc: the cluster's VPC (the only one whose security groups the controller may change).
        web_acl_arn: the stage's web ACL (the only one the controller may associate).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster: eks.ICluster,
        cluster_name: str,
        vpc: ec2.IVpc,
        web_acl_arn: str,
    ) -> None:
        super().__init__(scope, id_, source=SOURCE)
        document = scoped_policy(
            json.loads(POLICY_FILE.read_text()), vpc_arn=vpc.vpc_arn, web_acl_arn=web_acl_arn
        )
        # The ids the role and association had before this add-on took the common shape ("Default"
        # is left out of logical ids), so CloudFormation keeps both.
        identity = self.identity = PodIdentityRole(
            self,
            "Default",
            association_id="PodIdentity",
            cluster_name=cluster_name,
            namespace=SOURCE.namespace,
            service_account=SERVICE_ACCOUNT,
            description=f"AWS Load Balancer Controller of {cluster_name}",
            policy_name="LoadBalancerController",
            statements=[iam.PolicyStatement.from_json(statement) for statement in document["Statement"]],
        )
        acknowledge(
            identity.role,
            *(f"AwsSolutions-IAM5[Resource::{resource}]" for resource in POLICY_WILDCARDS),
            reason="The controller's published policy, narrowed in scoped_policy.py (security groups of "
            "this VPC, k8s-* load balancers, this web ACL; no WAF Classic or Shield). Still broad: "
            + "; ".join(BROAD)
            + ".",
        )
        self._install(
            cluster=cluster,
            values=controller_values(
                cluster_name=cluster_name, region=cluster.stack.region, vpc_id=vpc.vpc_id
            ),
            timeout_minutes=None,  # Helm's default, as this release has always had
        )
