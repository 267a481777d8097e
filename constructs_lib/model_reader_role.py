"""An IAM role that one model's pods assume through EKS Pod Identity to read only its weights."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from constructs_lib.pod_identity import PodIdentityRole


class ModelReaderRole(PodIdentityRole):
    """A ``PodIdentityRole`` whose permissions are one model version's weights. Exposes ``role`` and
    ``association``; more statements (a guardrail) may be added with ``role.add_to_policy``.

    Props:
        cluster_name: the EKS cluster of the pods.
        namespace: namespace of the service account.
        service_account: service account the pods run as.
        bucket: the stage's model bucket.
        bucket_key: its KMS key (decrypt only, and only through S3).
        prefixes: key prefixes (ending in '/') the pods may list and read.
        bucket_key_alias: when ``bucket_key`` is known only by this alias (a failover stage reading the
            replica), decrypt is allowed on the key carrying the alias. Default: ``bucket_key``'s ARN.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster_name: str,
        namespace: str,
        service_account: str,
        bucket: s3.IBucket,
        bucket_key: kms.IKey,
        prefixes: list[str],
        bucket_key_alias: str | None = None,
    ) -> None:
        # Statements are added below with add_to_policy (the role's default policy resource), where
        # a guardrail adds its own too (stacks/serving_guardrails.py).
        super().__init__(
            scope,
            id_,
            cluster_name=cluster_name,
            namespace=namespace,
            service_account=service_account,
            description=f"Reads model weights for {namespace}/{service_account}",
        )
        stack = Stack.of(self)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ListModelPrefix",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in prefixes]}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadModelObjects",
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="DecryptThroughS3",
                actions=["kms:Decrypt"],
                resources=[
                    bucket_key.key_arn
                    if bucket_key_alias is None
                    else f"arn:{stack.partition}:kms:{stack.region}:{stack.account}:key/*"
                ],
                conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{stack.region}.{stack.url_suffix}"},
                    **(
                        {}
                        if bucket_key_alias is None
                        else {"ForAnyValue:StringEquals": {"kms:ResourceAliases": [bucket_key_alias]}}
                    ),
                },
            )
        )
