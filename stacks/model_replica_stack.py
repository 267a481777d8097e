"""The replica region's half of disaster recovery: the bucket model weights are replicated into and the
keys that encrypt the replicas (weights and secrets). Deployed with the stage, in the replica region."""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from config.disaster_recovery import replica_bucket_name, replica_key_alias, replica_secrets_key_alias
from constructs_lib.access_logs_bucket import access_logs_bucket
from constructs_lib.rotating_key import RotatingRetainedKey


class ModelReplicaStack(Stack):
    """Exposes ``replica_bucket``, ``replica_key`` and ``secrets_replica_key``.

    Props:
        stage: the stage name (physical names and aliases are derived from it).
    """

    def __init__(self, scope: Construct, id_: str, *, stage: str, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        self.replica_key = RotatingRetainedKey(
            self,
            "ReplicaKey",
            description=f"Replicated model weights of stage {stage}",
            alias=replica_key_alias(stage),
        )
        self.secrets_replica_key = RotatingRetainedKey(
            self,
            "SecretsReplicaKey",
            description=f"Secret replicas of stage {stage}",
            alias=replica_secrets_key_alias(stage),
        )
        access_logs = access_logs_bucket(self)
        self.replica_bucket = s3.Bucket(
            self,
            "ReplicaBucket",
            bucket_name=replica_bucket_name(stage=stage, account=self.account, region=self.region),
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.replica_key,
            bucket_key_enabled=True,
            # Replication requires versioning on both sides.
            versioned=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="s3/models/",
            # Named: a failed first create must delete it, or the retry fails with "already exists".
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
