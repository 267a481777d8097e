"""The bucket a stage's S3 server access logs (and, in the serving stack, ALB access logs) go to."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct


def access_logs_bucket(scope: Construct, id_: str = "AccessLogsBucket") -> s3.Bucket:
    """Versioned, TLS-only, private, retained, a year of logs. SSE-S3, not a CMK: S3 server access
    logs and ALB access logs are delivered only to SSE-S3 buckets."""
    return s3.Bucket(
        scope,
        id_,
        encryption=s3.BucketEncryption.S3_MANAGED,
        versioned=True,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
        lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
        removal_policy=RemovalPolicy.RETAIN,
    )
