"""A customer-managed KMS key for the managed node groups' EBS root volumes."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from constructs_lib.rotating_key import RotatingRetainedKey

AUTOSCALING_SERVICE_LINKED_ROLE = "aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
KEY_USE_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
)


def autoscaling_service_linked_role_arn(stack: Stack) -> str:
    """The account's default EC2 Auto Scaling service-linked role, in the stack's partition."""
    return f"arn:{stack.partition}:iam::{stack.account}:role/{AUTOSCALING_SERVICE_LINKED_ROLE}"


class NodeVolumeKey(Construct):
    """KMS key with rotation that EC2 Auto Scaling may use to launch nodes with encrypted volumes.

    Exposes ``key``. Pass it to every node launch template's root volume.
    """

    def __init__(self, scope: Construct, id_: str, *, description: str) -> None:
        super().__init__(scope, id_)
        self.key = RotatingRetainedKey(
            self,
            "Key",
            description=description,
        )
        # EKS creates each managed node group's Auto Scaling group, and Auto Scaling launches the
        # instances as its service-linked role, whose own policy covers AWS-managed keys only. These
        # are the two statements of the EC2 Auto Scaling user guide's "Required AWS KMS key policy
        # for use with encrypted volumes": the role may use the key, and may create grants only for
        # AWS resources (EBS takes one per volume). The guide adds no kms:ViaService condition for
        # this role, so none is added here. The node role needs nothing: EBS, not the instance,
        # decrypts the volume's data key. The role must exist before the key is created; see
        # docs/delivery.md ("One-time setup").
        autoscaling = iam.ArnPrincipal(autoscaling_service_linked_role_arn(Stack.of(self)))
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AutoScalingUseOfTheKey",
                principals=[autoscaling],
                actions=list(KEY_USE_ACTIONS),
                resources=["*"],
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AutoScalingGrantsForAwsResources",
                principals=[autoscaling],
                actions=["kms:CreateGrant"],
                resources=["*"],
                conditions={"Bool": {"kms:GrantIsForAWSResource": True}},
            )
        )
