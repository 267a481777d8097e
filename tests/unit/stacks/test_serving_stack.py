"""Serving stack: model bucket, log bucket, WAF, pod roles, LB controller and the applied charts."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match

from constructs_lib.addons.alb_controller import POLICY_FILE, SOURCE
from stacks.serving_stack import model_prefixes
from tests.synth import SynthResult
from tests.templates import applied_charts, as_list, one, render, resources

READ_PREFIXES = tuple(
    f"{service}:{verb}"
    for service in ("ec2", "elasticloadbalancing", "acm", "iam", "cognito-idp", "wafv2")
    for verb in ("Describe", "Get", "List")
)
ELB_LOG_ACCOUNTS = {"us-east-1": "127311923021", "us-west-2": "797873946194"}
ALB = "alb.ingress.kubernetes.io"


def serving(synth: SynthResult, stage: str) -> dict[str, Any]:
    template: dict[str, Any] = synth.templates[stage]["Serving"]
    return template


def logical_id(synth: SynthResult, stage: str, kind: str, prefix: str) -> str:
    return one(serving(synth, stage), kind, prefix)[0]


def ingress_annotations(synth: SynthResult, stage: str) -> dict[str, str]:
    (ingress,) = applied_charts(synth, stage)["ingress"]
    annotations: dict[str, str] = ingress["metadata"]["annotations"]
    return annotations


def test_model_bucket_kms_versioned_private_tls_only_and_logged(synth: SynthResult, stage: str) -> None:
    key = logical_id(synth, stage, "AWS::KMS::Key", "ModelBucketKey")
    logs = logical_id(synth, stage, "AWS::S3::Bucket", "AccessLogsBucket")
    template = synth.template(stage, "Serving")
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "BucketKeyEnabled": True,
                        "ServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": {"Fn::GetAtt": [key, "Arn"]},
                        },
                    }
                ]
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LoggingConfiguration": {"DestinationBucketName": {"Ref": logs}, "LogFilePrefix": "s3/models/"},
        },
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    bucket = logical_id(synth, stage, "AWS::S3::Bucket", "ModelBucket")
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": bucket},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_access_log_bucket_uses_sse_s3_and_admits_alb_log_delivery(synth: SynthResult, stage: str) -> None:
    # ALB access logs (and S3 server access logs) can only be delivered to SSE-S3 buckets.
    logs = logical_id(synth, stage, "AWS::S3::Bucket", "AccessLogsBucket")
    properties = resources(serving(synth, stage), "AWS::S3::Bucket")[logs]["Properties"]
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    config = synth.configs[stage]
    assert config.region is not None
    policy = resources(serving(synth, stage), "AWS::S3::BucketPolicy")[
        logical_id(synth, stage, "AWS::S3::BucketPolicy", "AccessLogsBucketPolicy")
    ]
    (delivery,) = [
        statement
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "AlbAccessLogDelivery"
    ]
    assert delivery["Effect"] == "Allow"
    assert delivery["Action"] == "s3:PutObject"
    assert delivery["Principal"] == {"AWS": f"arn:aws:iam::{ELB_LOG_ACCOUNTS[config.region]}:root"}
    account = config.account or "<Ref:AWS::AccountId>"
    bucket_arn = f"<GetAtt:{logs}.Arn>"
    assert render(delivery["Resource"]) == f"{bucket_arn}/alb/{stage}/AWSLogs/{account}/*"


def permissions(document: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    return {
        (
            statement["Effect"],
            action,
            json.dumps(resource),
            json.dumps(statement.get("Condition"), sort_keys=True),
        )
        for statement in document["Statement"]
        for action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    }


def _web_acl(synth: SynthResult, stage: str) -> dict[str, Any]:
    (acl,) = resources(serving(synth, stage), "AWS::WAFv2::WebACL").values()
    properties: dict[str, Any] = acl["Properties"]
    return properties


def test_web_acl_is_regional_with_rate_limit_and_managed_rules(synth: SynthResult, stage: str) -> None:
    acl = _web_acl(synth, stage)
    assert acl["Scope"] == "REGIONAL"
    assert acl["DefaultAction"] == {"Allow": {}}
    rules = {rule["Name"]: rule for rule in acl["Rules"]}
    rate = rules["RateLimitPerClientIp"]
    assert rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"] == {
        "AggregateKeyType": "IP",
        "Limit": synth.configs[stage].waf.rate_limit_per_5_minutes,
        "EvaluationWindowSec": 300,
    }
    common = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert common["VendorName"] == "AWS"
    assert common["RuleActionOverrides"] == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]
    bad_inputs = rules["AWSManagedRulesKnownBadInputsRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert "RuleActionOverrides" not in bad_inputs
    for rule in acl["Rules"]:
        assert rule["VisibilityConfig"]["SampledRequestsEnabled"] is True


def test_no_allow_list_when_the_stage_lists_no_cidrs(synth: SynthResult, stage: str) -> None:
    assert synth.configs[stage].waf.allow_cidrs == []
    assert resources(serving(synth, stage), "AWS::WAFv2::IPSet") == {}
    assert "BlockOutsideAllowList" not in [rule["Name"] for rule in _web_acl(synth, stage)["Rules"]]


def test_waf_logs_to_an_encrypted_aws_waf_logs_group_without_authorization(
    synth: SynthResult, stage: str
) -> None:
    acl = logical_id(synth, stage, "AWS::WAFv2::WebACL", "EdgeWebAcl")
    (group,) = resources(serving(synth, stage), "AWS::Logs::LogGroup").values()
    name = group["Properties"]["LogGroupName"]
    assert name.startswith("aws-waf-logs-")
    assert "KmsKeyId" in group["Properties"]
    assert group["Properties"]["RetentionInDays"] == synth.configs[stage].log_retention_days
    (logging,) = resources(serving(synth, stage), "AWS::WAFv2::LoggingConfiguration").values()
    assert logging["Properties"]["ResourceArn"] == {"Fn::GetAtt": [acl, "Arn"]}
    (destination,) = logging["Properties"]["LogDestinationConfigs"]
    assert render(destination).endswith(f":log-group:{name}")  # no ":*" suffix: WAF rejects it
    assert logging["Properties"]["RedactedFields"] == [{"SingleHeader": {"Name": "authorization"}}]


def test_waf_is_associated_with_the_alb_through_the_ingress(synth: SynthResult, stage: str) -> None:
    acl = logical_id(synth, stage, "AWS::WAFv2::WebACL", "EdgeWebAcl")
    assert ingress_annotations(synth, stage)[f"{ALB}/wafv2-acl-arn"] == f"<GetAtt:{acl}.Arn>"


def test_alb_access_logs_go_to_the_log_bucket(synth: SynthResult, stage: str) -> None:
    logs = logical_id(synth, stage, "AWS::S3::Bucket", "AccessLogsBucket")
    attributes = ingress_annotations(synth, stage)[f"{ALB}/load-balancer-attributes"]
    assert f"access_logs.s3.bucket=<Ref:{logs}>" in attributes.split(",")


def test_certificate_wiring_follows_the_domain(synth: SynthResult, stage: str) -> None:
    ingress = synth.configs[stage].ingress
    annotations = ingress_annotations(synth, stage)
    if ingress.domain:
        assert annotations[f"{ALB}/certificate-arn"] == ingress.certificate_arn
        assert annotations[f"{ALB}/ssl-redirect"] == "443"
    else:
        assert f"{ALB}/certificate-arn" not in annotations
        assert f"{ALB}/ssl-redirect" not in annotations


def test_each_model_role_reads_only_its_prefix(synth: SynthResult, stage: str) -> None:
    bucket = logical_id(synth, stage, "AWS::S3::Bucket", "ModelBucket")
    key = logical_id(synth, stage, "AWS::KMS::Key", "ModelBucketKey")
    template = synth.template(stage, "Serving")
    for model in synth.configs[stage].models:
        for version in model.versions:
            instance = f"{model.id}-{version.name}"
            prefixes = model_prefixes(version)
            role = logical_id(synth, stage, "AWS::IAM::Role", f"Reader{instance.replace('-', '')}Role")
            statements = [
                {
                    "Sid": "ListModelPrefix",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": {"Fn::GetAtt": [bucket, "Arn"]},
                    "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in prefixes]}},
                },
                {
                    "Sid": "ReadModelObjects",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": [
                        {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, f"/{prefix}*"]]}
                        for prefix in prefixes
                    ]
                    if len(prefixes) > 1
                    else {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, f"/{prefixes[0]}*"]]},
                },
                {
                    "Sid": "DecryptThroughS3",
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": {"Fn::GetAtt": [key, "Arn"]},
                    "Condition": {"StringEquals": {"kms:ViaService": Match.any_value()}},
                },
            ]
            if model.filtering.enabled:  # input/output filtering: its own guardrail only
                guardrail = logical_id(
                    synth, stage, "AWS::Bedrock::Guardrail", f"Guardrail{model.id.replace('-', '')}Guardrail"
                )
                statements.append(
                    {
                        "Sid": "ApplyModelGuardrail",
                        "Effect": "Allow",
                        "Action": "bedrock:ApplyGuardrail",
                        "Resource": {"Fn::GetAtt": [guardrail, "GuardrailArn"]},
                    }
                )
            template.has_resource_properties(
                "AWS::IAM::Policy",
                {"Roles": [{"Ref": role}], "PolicyDocument": {"Statement": statements}},
            )
            template.has_resource_properties(
                "AWS::IAM::Role",
                {
                    "AssumeRolePolicyDocument": {
                        "Statement": [
                            {
                                "Action": ["sts:AssumeRole", "sts:TagSession"],
                                "Effect": "Allow",
                                "Principal": {"Service": "pods.eks.amazonaws.com"},
                            }
                        ]
                    }
                },
            )
            template.has_resource_properties(
                "AWS::EKS::PodIdentityAssociation",
                {
                    "ClusterName": f"llm-inference-{stage}",
                    "Namespace": "models",
                    "ServiceAccount": instance,
                    "RoleArn": {"Fn::GetAtt": [role, "Arn"]},
                },
            )


def test_draft_model_prefix_is_readable_by_its_version(synth: SynthResult) -> None:
    version = synth.configs["prod"].models[1].versions[0]
    assert model_prefixes(version) == ["llama-3-1-70b-instruct-awq/", "llama-3-2-1b-instruct/"]


def test_load_balancer_controller_release_and_pod_identity(synth: SynthResult, stage: str) -> None:
    template = synth.template(stage, "Serving")
    role = logical_id(synth, stage, "AWS::IAM::Role", "AlbControllerRole")
    template.has_resource_properties(
        "Custom::AWSCDK-EKS-HelmChart",
        {
            "Chart": "aws-load-balancer-controller",
            "Repository": SOURCE.repository,
            "Version": SOURCE.version,
            "Namespace": "kube-system",
        },
    )
    template.has_resource_properties(
        "AWS::EKS::PodIdentityAssociation",
        {
            "Namespace": "kube-system",
            "ServiceAccount": "aws-load-balancer-controller",
            "RoleArn": {"Fn::GetAtt": [role, "Arn"]},
        },
    )
    (policy,) = resources(serving(synth, stage), "AWS::IAM::Role")[role]["Properties"]["Policies"]
    # CDK merges statements with equal conditions; compare permission by permission. The published
    # policy minus what scoped_policy narrows (tests/unit/security/test_alb_controller_policy.py).
    published = permissions(json.loads(POLICY_FILE.read_text()))
    narrowed = {
        p for p in published if p[2] == '"*"' and p[3] == "null" and not p[1].startswith(READ_PREFIXES)
    }
    kept = permissions(policy["PolicyDocument"])
    assert (
        published - narrowed - {p for p in published if p[1].startswith(("waf-regional:", "shield:"))} <= kept
    )
    assert not {p for p in kept if p[2] == '"*"' and p[3] == "null" and not p[1].startswith(READ_PREFIXES)}


def test_charts_wait_for_the_namespace_and_the_controller(synth: SynthResult, stage: str) -> None:
    manifests = resources(serving(synth, stage), "Custom::AWSCDK-EKS-KubernetesResource")
    namespace = logical_id(synth, stage, "Custom::AWSCDK-EKS-KubernetesResource", "Chartmodelsnamespace")
    controller = logical_id(synth, stage, "Custom::AWSCDK-EKS-HelmChart", "AlbControllerChart")
    assert controller in manifests[namespace]["DependsOn"]
    for name, manifest in manifests.items():
        if name != namespace:
            assert namespace in manifest["DependsOn"], name


def test_one_chart_per_model_version_plus_namespace_api_key_and_ingress(
    synth: SynthResult, stage: str
) -> None:
    config = synth.configs[stage]
    expected = ["models-namespace", "api-key"]
    expected += [f"model-{model.id}-{version.name}" for model in config.models for version in model.versions]
    expected += ["model-gateway"] if config.ingress.routing_mode == "model" else []
    expected += ["ingress"]
    assert list(applied_charts(synth, stage)) == expected
