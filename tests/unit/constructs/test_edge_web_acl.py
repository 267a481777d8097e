"""The allow-list of the web ACL (no stage configures one, so a tiny app of its own)."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from constructs_lib.edge_web_acl import EdgeWebAcl


def web_acl_template(allow_cidrs: list[str]) -> Template:
    stack = cdk.Stack(cdk.App(), "Test", env=cdk.Environment(region="us-east-1"))
    EdgeWebAcl(
        stack,
        "Acl",
        name_prefix="test",
        rate_limit_per_5_minutes=100,
        allow_cidrs=allow_cidrs,
        logs_key=kms.Key(stack, "Key"),
        log_retention_days=30,
        max_body_bytes=1_000_000,
    )
    return Template.from_stack(stack)


def test_allow_list_blocks_every_other_client_before_the_other_rules() -> None:
    template = web_acl_template(["203.0.113.0/24", "198.51.100.7/32"])
    (ip_set_id,) = template.find_resources("AWS::WAFv2::IPSet")
    template.has_resource_properties(
        "AWS::WAFv2::IPSet",
        {"Scope": "REGIONAL", "IPAddressVersion": "IPV4", "Addresses": ["203.0.113.0/24", "198.51.100.7/32"]},
    )
    (acl,) = template.find_resources("AWS::WAFv2::WebACL").values()
    rules: list[dict[str, Any]] = sorted(acl["Properties"]["Rules"], key=lambda rule: rule["Priority"])
    first = rules[0]
    assert first["Name"] == "BlockOutsideAllowList"
    assert first["Action"] == {"Block": {}}
    assert first["Statement"] == {
        "NotStatement": {
            "Statement": {"IPSetReferenceStatement": {"Arn": {"Fn::GetAtt": [ip_set_id, "Arn"]}}}
        }
    }
    # Allowed clients are still rate limited and inspected.
    assert [rule["Name"] for rule in rules[1:]] == [
        "RateLimitPerClientIp",
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "BodyLargerThanAnyPrompt",
    ]


def test_no_ip_set_without_an_allow_list() -> None:
    template = web_acl_template([])
    template.resource_count_is("AWS::WAFv2::IPSet", 0)
