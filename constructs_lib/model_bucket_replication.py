"""Cross-region replication of the model bucket into the stage's replica bucket (SSE-KMS on both sides).

The replica bucket and its key live in another region, so they are named, not referenced: the bucket by
its derived name, the key by its alias (S3 accepts an alias ARN as ReplicaKmsKeyID; IAM matches the key
through ``kms:ResourceAliases``).
"""

from __future__ import annotations

from aws_cdk import Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from config.disaster_recovery import replica_bucket_name, replica_key_alias
from constructs_lib.nag import acknowledge


class ModelBucketReplication(Construct):
    """Adds a replication rule for every object of ``bucket``. Exposes ``role``.

    Props:
        bucket: the source model bucket (versioned, SSE-KMS with ``bucket_key``).
        bucket_key: its KMS key.
        stage: the stage name (derives the replica bucket name and key alias).
        replica_region: where the replica bucket lives.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        bucket: s3.Bucket,
        bucket_key: kms.IKey,
        stage: str,
        replica_region: str,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        partition, account, suffix = stack.partition, stack.account, stack.url_suffix
        replica_bucket_arn = (
            f"arn:{partition}:s3:::{replica_bucket_name(stage=stage, account=account, region=replica_region)}"
        )
        alias = replica_key_alias(stage)
        self.replica_key_alias_arn = f"arn:{partition}:kms:{replica_region}:{account}:{alias}"
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("s3.amazonaws.com"),
            description=f"S3 replication of stage {stage}'s model bucket to {replica_region}",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadReplicationConfiguration",
                actions=["s3:GetReplicationConfiguration", "s3:ListBucket"],
                resources=[bucket.bucket_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadSourceVersions",
                actions=[
                    "s3:GetObjectVersionForReplication",
                    "s3:GetObjectVersionAcl",
                    "s3:GetObjectVersionTagging",
                ],
                resources=[bucket.arn_for_objects("*")],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteReplicas",
                actions=["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                resources=[f"{replica_bucket_arn}/*"],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="DecryptSourceThroughS3",
                actions=["kms:Decrypt"],
                resources=[bucket_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.{suffix}"}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="EncryptReplicasThroughS3",
                actions=["kms:Encrypt", "kms:GenerateDataKey"],
                resources=[f"arn:{partition}:kms:{replica_region}:{account}:key/*"],
                conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{replica_region}.{suffix}"},
                    "ForAnyValue:StringEquals": {"kms:ResourceAliases": [alias]},
                },
            )
        )
        cfn_bucket = bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.replication_configuration = s3.CfnBucket.ReplicationConfigurationProperty(
            role=self.role.role_arn,
            rules=[
                s3.CfnBucket.ReplicationRuleProperty(
                    id="ReplicaRegion",
                    status="Enabled",
                    priority=1,
                    filter=s3.CfnBucket.ReplicationRuleFilterProperty(prefix=""),
                    # Deleting a model version in the primary deletes it in the replica too: the replica
                    # mirrors what serves, and old versions stay recoverable through versioning.
                    delete_marker_replication=s3.CfnBucket.DeleteMarkerReplicationProperty(status="Enabled"),
                    source_selection_criteria=s3.CfnBucket.SourceSelectionCriteriaProperty(
                        sse_kms_encrypted_objects=s3.CfnBucket.SseKmsEncryptedObjectsProperty(
                            status="Enabled"
                        )
                    ),
                    destination=s3.CfnBucket.ReplicationDestinationProperty(
                        bucket=replica_bucket_arn,
                        encryption_configuration=s3.CfnBucket.EncryptionConfigurationProperty(
                            replica_kms_key_id=self.replica_key_alias_arn
                        ),
                    ),
                )
            ],
        )
        source_objects = f"<{stack.resolve(stack.get_logical_id(cfn_bucket))}.Arn>/*"
        # cdk-nag prints an unresolved partition as <AWS::Partition>; finding ids must be plain strings.
        shown = "<AWS::Partition>" if Token.is_unresolved(partition) else partition
        shown_replica = f"arn:{shown}:s3:::{replica_bucket_arn.rsplit(':', 1)[1]}"
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::{source_objects}]",
            f"AwsSolutions-IAM5[Resource::{shown_replica}/*]",
            reason="Replication copies every object version of the bucket: reads all source objects and "
            "writes all replica objects, with replication actions only.",
        )
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::arn:{shown}:kms:{replica_region}:{account}:key/*]",
            reason="The replica key is in another region and known by alias only: encrypt is limited to "
            "the key carrying that alias (kms:ResourceAliases) and to calls through S3 there.",
        )
