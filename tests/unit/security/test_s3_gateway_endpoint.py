"""Issue #14 item 12: the S3 gateway endpoint passes this account's buckets (read-only), the public buckets
that image layers and packages come from (read-only), and CloudFormation's custom resource responses.

Who reads or writes S3 from inside the VPC, and why each entry exists:
- nodes pulling images: ECR (our Docker Hub pull-through cache, EKS add-on images), registry.k8s.io
  (Cluster Autoscaler, kube-state-metrics), quay.io (node exporter) and, for AWS clients, Docker Hub
  redirect layer downloads to S3 (the full table: stacks/image_registries.py);
- vLLM pods: the stage's model bucket (this account; the DR replica is in another region, via the NAT);
- the smoke-check CodeBuild project: its source, a file asset in this account's CDK assets bucket;
- the kubectl provider (handler and framework Lambdas in the VPC): Helm chart assets, if any, from
  the same assets bucket, and the custom resource response to CloudFormation's presigned URL.
"""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
import pytest

from config import StageConfig
from stacks import image_registries, network_stack
from stacks.network_stack import model_source_buckets, s3_endpoint_statements
from tests.synth import PipelineSynthResult, SynthResult
from tests.templates import as_list, render, resources

# Upstream facts, each checked at its source (2026-11-29) and pinned here:
# - ECR image layers: "arn:aws:s3:::prod-region-starport-layer-bucket/*", read with s3:GetObject.
#   https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html ("Minimum Amazon S3
#   bucket permissions for Amazon ECR"); AWS's data perimeter examples list the same ARN
#   (github.com/aws-samples/data-perimeter-policy-examples, vpc_endpoint_policies/s3_endpoint_policy.json).
# - registry.k8s.io: "AWS clients are detected by client IP address and redirect to a local S3 bucket
#   copy only when requesting content blobs"; the bucket of a region with one is
#   prod-registry-k8s-io-<region> (https://github.com/kubernetes/registry.k8s.io, cmd/archeio/README.md
#   and cmd/archeio/internal/app/buckets.go awsRegionToHostURL).
# - quay.io: Quay returns an S3 presigned URL when the client IP is in AWS (quay/quay
#   storage/cloud.py CloudFrontedS3Storage.get_direct_download_url); quay.io's bucket is
#   quayio-production-s3 ("Required to access Quay image content in AWS", OpenShift "Configuring your
#   firewall", github.com/openshift/openshift-docs modules/configuring-firewall.adoc).
# - AL2023 repositories: arn:aws:s3:::al2023-repos-<region>-de612dc2/* (data perimeter examples above).
# - CloudFormation: "For custom resources, permit traffic to the cloudformation-custom-resource-response-
#   region bucket ... region names don't contain dashes" (https://docs.aws.amazon.com/AWSCloudFormation/
#   latest/UserGuide/cfn-vpce-bucketnames.html). aws-cdk-lib 2.275 puts the kubectl provider's
#   framework Lambda in the cluster's private subnets (aws-eks-v2/lib/kubectl-provider.js: Provider
#   with vpc and vpcSubnets), so its responses take this endpoint.
# - docker.io: arn:aws:s3:::docker-images-prod/* (docker/hub-feedback issue 1318, rancher/os issue 2032).
PINNED_REGISTRY_BUCKETS = {
    "*.dkr.ecr.*.amazonaws.com": ("prod-{region}-starport-layer-bucket",),
    "registry.k8s.io": ("prod-registry-k8s-io-{region}",),
    "quay.io": ("quayio-production-s3",),
    "docker.io": ("docker-images-prod",),
}
"""Registries that redirect AWS clients to S3 (stacks/image_registries.py; the others are not S3)."""
PINNED_PATTERNS = {
    "AL2023_REPO_BUCKET": "al2023-repos-{region}-de612dc2",
    "CFN_RESPONSE_BUCKET": "cloudformation-custom-resource-response-{region_without_dashes}",
}
# The bootstrap bucket file assets are published to (DefaultStackSynthesizer, default qualifier).
CDK_ASSETS_BUCKET = re.compile(r"^cdk-hnb659fds-assets-(?P<account>.+)-(?P<region>[^-]+-[^-]+-\d)$")
SIDS = {"OwnAccountBucketsReadOnly", "PublicImageLayersAndPackages", "CloudFormationCustomResourceResponses"}
READ_ACTIONS = re.compile(r"^s3:(Get|List)[A-Za-z]*\*?$")


def s3_policy(synth: SynthResult, stage: str) -> dict[str, dict[str, Any]]:
    (endpoint,) = [
        e
        for e in resources(synth.templates[stage]["Network"], "AWS::EC2::VPCEndpoint").values()
        if e["Properties"]["VpcEndpointType"] == "Gateway"
    ]
    assert "s3" in json.dumps(endpoint["Properties"]["ServiceName"])
    document = endpoint["Properties"]["PolicyDocument"]
    return {statement["Sid"]: statement for statement in document["Statement"]}


def account_of(config: StageConfig) -> object:
    return config.account or {"Ref": "AWS::AccountId"}


def test_bucket_name_patterns_are_the_verified_ones() -> None:
    for name, pattern in PINNED_PATTERNS.items():
        assert getattr(network_stack, name) == pattern, name
    assert {
        host: entry.s3_buckets for host, entry in image_registries.REGISTRIES.items() if entry.s3_buckets
    } == PINNED_REGISTRY_BUCKETS


def test_every_stage_has_exactly_the_three_statements(synth: SynthResult, stage: str) -> None:
    statements = s3_policy(synth, stage)
    assert model_source_buckets(synth.configs[stage]) == []  # no s3:// source in the committed configs
    assert set(statements) == SIDS
    for statement in statements.values():
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"AWS": "*"}  # what gateway endpoint policies require


def test_own_buckets_are_read_only_and_of_this_account(synth: SynthResult, stage: str) -> None:
    own = s3_policy(synth, stage)["OwnAccountBucketsReadOnly"]
    assert own["Resource"] == "*"
    assert own["Condition"] == {"StringEquals": {"aws:ResourceAccount": account_of(synth.configs[stage])}}
    assert sorted(as_list(own["Action"])) == sorted(network_stack.OWN_BUCKET_READS)
    assert all(READ_ACTIONS.match(action) for action in as_list(own["Action"]))


def test_public_buckets_are_the_stage_regions_and_read_only(synth: SynthResult, stage: str) -> None:
    region = synth.configs[stage].region
    assert region is not None
    public = s3_policy(synth, stage)["PublicImageLayersAndPackages"]
    assert public["Action"] == "s3:GetObject"
    assert "Condition" not in public  # presigned by ECR or Quay, or anonymous: no account to match
    assert sorted(render(resource) for resource in as_list(public["Resource"])) == sorted(
        f"arn:aws:s3:::{name}/*"
        for name in (
            f"prod-{region}-starport-layer-bucket",
            f"prod-registry-k8s-io-{region}",
            "quayio-production-s3",
            "docker-images-prod",
            f"al2023-repos-{region}-de612dc2",
        )
    )


def test_the_only_write_is_cloudformations_response_bucket(synth: SynthResult, stage: str) -> None:
    region = synth.configs[stage].region
    assert region is not None
    statements = s3_policy(synth, stage)
    responses = statements["CloudFormationCustomResourceResponses"]
    assert responses["Action"] == "s3:PutObject"
    assert render(responses["Resource"]) == (
        f"arn:aws:s3:::cloudformation-custom-resource-response-{region.replace('-', '')}/*"
    )
    for sid, statement in statements.items():
        for action in as_list(statement["Action"]):
            assert action not in ("*", "s3:*"), sid
            assert READ_ACTIONS.match(action) or (sid, action) == (
                "CloudFormationCustomResourceResponses",
                "s3:PutObject",
            ), (sid, action)
        if statement["Resource"] == "*":
            assert "aws:ResourceAccount" in statement["Condition"]["StringEquals"], sid


def smoke_check_source_bucket(templates: dict[str, dict[str, Any]]) -> re.Match[str]:
    (project,) = resources(templates["SmokeCheck"], "AWS::CodeBuild::Project").values()
    source = project["Properties"]["Source"]
    assert source["Type"] == "S3"
    bucket = render(source["Location"]).split("/", 1)[0]
    match = CDK_ASSETS_BUCKET.match(bucket)
    assert match, bucket
    return match


def test_smoke_check_source_is_in_the_stage_account(synth: SynthResult, stage: str) -> None:
    """The only in-VPC reader that a pipeline could have put in another account: its source is a file
    asset, which lives in the stage account's assets bucket, so the own-account statement covers it."""
    match = smoke_check_source_bucket(synth.templates[stage])
    config = synth.configs[stage]
    assert match["account"] == (config.account or "<Ref:AWS::AccountId>")
    assert match["region"] == config.region


def test_pipeline_stages_read_no_pipeline_account_bucket(pipeline_synth: PipelineSynthResult) -> None:
    """CDK Pipelines publishes assets into each stage's account, so no statement for the pipeline
    account is needed (nor added)."""
    for stage, templates in pipeline_synth.stage_templates.items():
        match = smoke_check_source_bucket(templates)
        config = pipeline_synth.stack.stages[stage].config
        # A stage without an account deploys into the pipeline's: then that is its own account.
        assert match["account"] == (config.account or "<Ref:AWS::AccountId>"), stage
        assert match["region"] == config.region, stage


def resolved(stack: cdk.Stack, **kwargs: Any) -> list[dict[str, Any]]:
    return [stack.resolve(s.to_statement_json()) for s in s3_endpoint_statements(**kwargs)]


def test_configured_s3_sources_get_a_read_only_statement() -> None:
    stack = cdk.Stack(cdk.App(), "Probe", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    statements = resolved(
        stack, account="123456789012", region="eu-west-1", partition="aws", model_source_buckets=["weights-b"]
    )
    (extra,) = [s for s in statements if s["Sid"] == "ConfiguredModelSourcesReadOnly"]
    assert sorted(extra["Action"]) == ["s3:GetObject", "s3:ListBucket"]
    assert sorted(extra["Resource"]) == ["arn:aws:s3:::weights-b", "arn:aws:s3:::weights-b/*"]
    assert extra["Condition"] == {"StringEquals": {"aws:PrincipalAccount": "123456789012"}}


def test_model_source_buckets_reads_weights_and_draft_sources(synth: SynthResult) -> None:
    data = synth.configs["prod"].model_dump(mode="json", by_alias=True, exclude_unset=True)
    data["models"][0]["versions"][0]["source"] = "s3://weights-a/llama/8b"
    config = StageConfig.model_validate(data)
    assert model_source_buckets(config) == ["weights-a"]


@pytest.mark.parametrize(("region", "expected"), [("us-west-2", "uswest2"), ("eu-central-1", "eucentral1")])
def test_response_bucket_drops_the_dashes(region: str, expected: str) -> None:
    stack = cdk.Stack(cdk.App(), "Probe")
    (_, _, responses) = resolved(stack, account="1", region=region, partition="aws", model_source_buckets=[])
    assert responses["Resource"] == f"arn:aws:s3:::cloudformation-custom-resource-response-{expected}/*"


def test_response_bucket_for_a_deploy_time_region() -> None:
    stack = cdk.Stack(cdk.App(), "Probe")  # env-agnostic: the region is a token
    (_, _, responses) = resolved(
        stack, account=stack.account, region=stack.region, partition=stack.partition, model_source_buckets=[]
    )
    text = json.dumps(responses["Resource"])
    assert '"Fn::Split": ["-", {"Ref": "AWS::Region"}]' in text
    assert "cloudformation-custom-resource-response-" in text
