"""Every resource with a fixed physical name that a stack retains is retained except on create.

A failed first create rolls the stack back; a plain ``Retain`` leaves the named resource behind and
the retry fails with "already exists". ``RetainExceptOnCreate`` (CDK's
RETAIN_ON_UPDATE_OR_DELETE) deletes it on a failed create and keeps it on update or delete
(CloudFormation user guide, "DeletionPolicy attribute").

A name built from another resource of the same template (``/aws/lambda/<function Ref>``) is new
on every create, so only names without such a reference count as fixed.
"""

from __future__ import annotations

from typing import Any

from tests.synth import SynthResult

# Properties that set a resource's physical name, by the types this app creates (and would create).
NAME_PROPERTIES = {
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::IAM::Role": "RoleName",
    "AWS::KMS::Alias": "AliasName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::ECR::Repository": "RepositoryName",
    "AWS::ECR::PullThroughCacheRule": "EcrRepositoryPrefix",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::DynamoDB::Table": "TableName",
}
RETAINED = {"Retain", "RetainExceptOnCreate"}


def _references(value: Any) -> set[str]:
    """Logical ids a template value refers to (Ref / Fn::GetAtt), pseudo parameters excluded."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, argument in value.items():
            if key == "Ref" and isinstance(argument, str) and not argument.startswith("AWS::"):
                found.add(argument)
            elif key == "Fn::GetAtt":
                found.add(argument[0] if isinstance(argument, list) else str(argument).split(".")[0])
            else:
                found |= _references(argument)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


def fixed_name_retained(template: dict[str, Any]) -> dict[str, str]:
    """Logical id -> DeletionPolicy of every retained resource whose physical name is fixed."""
    resources = template["Resources"]
    found = {}
    for logical_id, resource in resources.items():
        name_property = NAME_PROPERTIES.get(resource["Type"])
        name = resource.get("Properties", {}).get(name_property) if name_property else None
        if name is None or resource.get("DeletionPolicy") not in RETAINED:
            continue
        if not (_references(name) & set(resources)):
            found[logical_id] = resource["DeletionPolicy"]
    return found


def test_named_retained_resources_are_retained_except_on_create(synth: SynthResult, stage: str) -> None:
    wrong = {
        f"{stack}/{logical_id}": policy
        for stack, template in synth.templates[stage].items()
        for logical_id, policy in fixed_name_retained(template).items()
        if policy != "RetainExceptOnCreate"
    }
    assert wrong == {}


def test_the_waf_log_group_is_one_of_them(synth: SynthResult, stage: str) -> None:
    """The class above is not empty: the WAF log group's name is fixed (aws-waf-logs-*)."""
    named = fixed_name_retained(synth.templates[stage]["Serving"])
    assert [lid for lid in named if lid.startswith("EdgeWebAclLogs")]
    resource = next(
        r
        for lid, r in synth.templates[stage]["Serving"]["Resources"].items()
        if lid.startswith("EdgeWebAclLogs")
    )
    assert resource["UpdateReplacePolicy"] == "Retain"


def test_a_name_from_a_sibling_resource_is_not_fixed() -> None:
    template = {
        "Resources": {
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {}},
            "Logs": {
                "Type": "AWS::Logs::LogGroup",
                "DeletionPolicy": "Retain",
                "Properties": {"LogGroupName": {"Fn::Join": ["", ["/aws/lambda/", {"Ref": "Fn"}]]}},
            },
            "Fixed": {
                "Type": "AWS::Logs::LogGroup",
                "DeletionPolicy": "Retain",
                "Properties": {"LogGroupName": {"Fn::Join": ["", ["waf-", {"Ref": "AWS::Region"}]]}},
            },
        }
    }
    assert fixed_name_retained(template) == {"Fixed": "Retain"}
