"""Disaster recovery: prod replicates its weights (and any secret) to us-east-2, and the same config
synthesises the whole stage there (docs/operations.md, "Disaster recovery")."""

from __future__ import annotations

import json
import os
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from app import add_failover_stage, cdk_json_context
from config import ConfigError, load_stages
from config.disaster_recovery import replica_bucket_name, replica_key_alias, replica_secrets_key_alias
from constructs_lib.secret_replication import ReplicateSecrets
from tests.synth import SynthResult
from tests.templates import applied_charts, as_list, resources
from tools.synth_summary import stage_templates, validation_violations

FAILOVER = "prod-failover"
REPLICA_REGION = "us-east-2"
ACCOUNT = "333333333333"
REPLICA_BUCKET = f"arn:aws:s3:::llm-inference-prod-models-{ACCOUNT}-{REPLICA_REGION}"
REPLICA_KEY_ALIAS_ARN = f"arn:aws:kms:{REPLICA_REGION}:{ACCOUNT}:alias/llm-inference-prod-models-replica"


@pytest.fixture(scope="module")
def failover(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    """prod rebuilt for its replica region, alone in an app with cdk-nag, as `-c failover=prod` does."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    outdir = Path(tmp_path_factory.mktemp("failover.cdk.out"))
    configs = load_stages()
    app = cdk.App(context=cdk_json_context(), outdir=str(outdir))
    stage = add_failover_stage(app, configs, "prod")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    return SynthResult(
        outdir=outdir,
        configs={FAILOVER: stage.config},
        stages={FAILOVER: stage},
        templates=stage_templates(outdir),
        nag_violations=validation_violations(outdir),
    )


# The primary (prod in us-west-2) and its replica stack.


def test_replica_stack_deploys_to_the_replica_region(synth: SynthResult) -> None:
    replica = synth.stages["prod"].replica
    assert replica is not None
    assert (replica.region, replica.account) == (REPLICA_REGION, ACCOUNT)
    assert synth.stages["dev"].replica is None
    assert synth.stages["staging"].replica is None


def test_replica_bucket_is_named_versioned_and_encrypted_with_the_aliased_key(synth: SynthResult) -> None:
    template = synth.template("prod", "Replica")
    template.has_resource_properties(
        "AWS::KMS::Alias", {"AliasName": replica_key_alias("prod"), "TargetKeyId": Match.any_value()}
    )
    template.has_resource_properties("AWS::KMS::Alias", {"AliasName": replica_secrets_key_alias("prod")})
    (key,) = [
        res["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]
        for res in resources(synth.templates["prod"]["Replica"], "AWS::KMS::Alias").values()
        if res["Properties"]["AliasName"] == replica_key_alias("prod")
    ]
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketName": replica_bucket_name(stage="prod", account=ACCOUNT, region=REPLICA_REGION),
            "VersioningConfiguration": {"Status": "Enabled"},
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "ServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": {"Fn::GetAtt": [key, "Arn"]},
                        },
                        "BucketKeyEnabled": True,
                    }
                ]
            },
            "PublicAccessBlockConfiguration": Match.object_like({"BlockPublicPolicy": True}),
        },
    )


def test_model_bucket_replicates_everything_kms_encrypted_to_the_replica(synth: SynthResult) -> None:
    (bucket,) = [
        res
        for name, res in resources(synth.templates["prod"]["Serving"], "AWS::S3::Bucket").items()
        if name.startswith("ModelBucket")
    ]
    (rule,) = bucket["Properties"]["ReplicationConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["Filter"] == {"Prefix": ""}
    assert rule["SourceSelectionCriteria"] == {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    assert rule["Destination"] == {
        "Bucket": REPLICA_BUCKET,
        "EncryptionConfiguration": {"ReplicaKmsKeyID": REPLICA_KEY_ALIAS_ARN},
    }
    for stage in ("dev", "staging"):
        for name, res in resources(synth.templates[stage]["Serving"], "AWS::S3::Bucket").items():
            assert "ReplicationConfiguration" not in res["Properties"], f"{stage} {name} replicates"


def test_replication_role_is_least_privilege(synth: SynthResult) -> None:
    policies = [
        res["Properties"]["PolicyDocument"]["Statement"]
        for name, res in resources(synth.templates["prod"]["Serving"], "AWS::IAM::Policy").items()
        if name.startswith("ModelBucketReplicationRole")
    ]
    (statements,) = policies
    by_sid = {statement["Sid"]: statement for statement in statements}
    assert set(by_sid) == {
        "ReadReplicationConfiguration",
        "ReadSourceVersions",
        "WriteReplicas",
        "DecryptSourceThroughS3",
        "EncryptReplicasThroughS3",
    }
    assert sorted(by_sid["WriteReplicas"]["Action"]) == [
        "s3:ReplicateDelete",
        "s3:ReplicateObject",
        "s3:ReplicateTags",
    ]
    assert by_sid["WriteReplicas"]["Resource"] == f"{REPLICA_BUCKET}/*"
    encrypt = by_sid["EncryptReplicasThroughS3"]
    assert encrypt["Resource"] == f"arn:aws:kms:{REPLICA_REGION}:{ACCOUNT}:key/*"
    assert encrypt["Condition"]["ForAnyValue:StringEquals"] == {
        "kms:ResourceAliases": [replica_key_alias("prod")]
    }
    assert "s3.us-east-2." in json.dumps(encrypt["Condition"]["StringEquals"]["kms:ViaService"])
    decrypt = by_sid["DecryptSourceThroughS3"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert "s3.us-west-2." in json.dumps(decrypt["Condition"]["StringEquals"]["kms:ViaService"])
    assert all("*" not in json.dumps(statement["Action"]) for statement in statements)


def test_secrets_of_the_stage_get_a_replica_in_the_replica_region() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "S")
    secretsmanager.Secret(stack, "ApiKey")
    kept = secretsmanager.CfnSecret(
        stack, "Kept", replica_regions=[secretsmanager.CfnSecret.ReplicaRegionProperty(region="eu-west-1")]
    )
    secretsmanager.Secret(
        stack, "CacheCopy", secret_name="ecr-pullthroughcache/llm-inference-prod/docker-hub"
    )
    cdk.Aspects.of(stack).add(ReplicateSecrets(stage="prod", replica_region=REPLICA_REGION))
    template = Template.from_stack(stack)
    # Recreated by the failover stage itself, so never replicated (same name would clash).
    template.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {"Name": "ecr-pullthroughcache/llm-inference-prod/docker-hub", "ReplicaRegions": Match.absent()},
    )
    template.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {
            "GenerateSecretString": Match.any_value(),
            "ReplicaRegions": [{"Region": REPLICA_REGION, "KmsKeyId": replica_secrets_key_alias("prod")}],
        },
    )
    assert kept.replica_regions is not None
    template.has_resource_properties(
        "AWS::SecretsManager::Secret", {"ReplicaRegions": [{"Region": "eu-west-1"}]}
    )


# The failover stage: same config, replica region.


def test_failover_stage_synthesises_every_stack_in_the_replica_region(failover: SynthResult) -> None:
    stage = failover.stages[FAILOVER]
    assert set(failover.templates[FAILOVER]) == {
        "Network",
        "Cluster",
        "Observability",
        "Platform",
        "Serving",
        "Ops",
        "SmokeCheck",
    }
    assert stage.replica is None
    for stack in (stage.network, stage.cluster, stage.serving, stage.ops):
        assert (stack.region, stack.account) == (REPLICA_REGION, ACCOUNT)


def test_failover_stage_passes_cdk_nag(failover: SynthResult) -> None:
    assert failover.nag_violations == []


def test_failover_vpc_uses_the_replica_azs_from_committed_context(failover: SynthResult) -> None:
    azs = {
        res["Properties"]["AvailabilityZone"]
        for res in resources(failover.templates[FAILOVER]["Network"], "AWS::EC2::Subnet").values()
    }
    assert azs == {"us-east-2a", "us-east-2b", "us-east-2c"}


def test_failover_serves_from_the_replica_bucket(failover: SynthResult) -> None:
    serving = failover.templates[FAILOVER]["Serving"]
    buckets = resources(serving, "AWS::S3::Bucket")
    assert [name for name in buckets if name.startswith("ModelBucket")] == []
    # No model-bucket key of its own (the API key's own CMK is the failover stage's, like its key).
    assert [name for name in resources(serving, "AWS::KMS::Key") if not name.startswith("ApiKey")] == []
    reader_statements = [
        statement
        for name, res in resources(serving, "AWS::IAM::Policy").items()
        if name.startswith("Reader")
        for statement in res["Properties"]["PolicyDocument"]["Statement"]
    ]
    reads = [s for s in reader_statements if s["Sid"] == "ReadModelObjects"]
    targets = [r for s in reads for r in as_list(s["Resource"])]
    assert targets
    assert all(target.startswith(f"{REPLICA_BUCKET}/") for target in targets), targets
    decrypts = [s for s in reader_statements if s["Sid"] == "DecryptThroughS3"]
    assert decrypts
    assert all(
        s["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": [replica_key_alias("prod")]}
        for s in decrypts
    )


def test_failover_ingress_uses_the_replica_certificate(failover: SynthResult) -> None:
    (ingress,) = applied_charts(failover, FAILOVER)["ingress"]
    certificate = ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/certificate-arn"]
    assert certificate.startswith(f"arn:aws:acm:{REPLICA_REGION}:{ACCOUNT}:certificate/")


def test_failover_of_a_stage_without_replica_region_is_a_config_error() -> None:
    app = cdk.App()
    with pytest.raises(
        ConfigError, match=r"config/dev.yaml: stage dev has no disaster_recovery.replica_region"
    ):
        add_failover_stage(app, load_stages(), "dev")
    with pytest.raises(ConfigError, match=r"no such stage; allowed: \['dev', 'staging', 'prod'\]"):
        add_failover_stage(app, load_stages(), "qa")
