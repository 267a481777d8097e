"""The one customer-managed key construct: rotation, the 30-day window, RETAIN, and the key's own id."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from constructs_lib.rotating_key import RotatingRetainedKey
from tests.templates import one, resources


def _template(**props: str) -> dict[str, Any]:
    stack = cdk.Stack(cdk.App(), "Test")
    RotatingRetainedKey(stack, "SomeKey", description="test", **props)
    template: dict[str, Any] = dict(Template.from_stack(stack).to_json())
    return template


def test_key_rotates_waits_30_days_and_is_retained() -> None:
    _, key = one(_template(), "AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["Properties"]["PendingWindowInDays"] == 30
    assert key["Properties"]["Description"] == "test"
    assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_logical_id_is_that_of_a_plain_key_with_the_same_id() -> None:
    """Keys created with kms.Key before the construct existed must keep their logical ids."""
    plain = cdk.Stack(cdk.App(), "Test")
    cdk.aws_kms.Key(plain, "SomeKey")
    assert set(_template()["Resources"]) == set(Template.from_stack(plain).to_json()["Resources"])


def test_alias_is_created_only_when_given() -> None:
    aliases = resources(_template(alias="alias/x"), "AWS::KMS::Alias").values()
    assert [alias["Properties"]["AliasName"] for alias in aliases] == ["alias/x"]
    assert resources(_template(), "AWS::KMS::Alias") == {}
