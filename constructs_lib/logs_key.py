"""A customer-managed KMS key that CloudWatch Logs may use for this stage's log groups."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from constructs_lib.rotating_key import RotatingRetainedKey


class LogsKey(Construct):
    """KMS key with rotation whose policy lets CloudWatch Logs encrypt this account's log groups.

    Exposes ``key``. Log groups in any stack of the stage can use it (``kms.IKey``).
    """

    def __init__(self, scope: Construct, id_: str, *, description: str) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.key = RotatingRetainedKey(
            self,
            "Key",
            description=description,
        )
        # CloudWatch Logs needs the key only for log groups of this account and region.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"
                        )
                    }
                },
            )
        )
