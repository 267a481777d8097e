"""The node volume key in an environment-agnostic stack (a tiny app of its own).

Every stage names its region, so its templates spell the partition out; here nothing is known and
the role's ARN must take the partition and account from the stack, not from a literal.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk.assertions import Template

from constructs_lib.node_volume_key import AUTOSCALING_SERVICE_LINKED_ROLE, NodeVolumeKey
from tests.templates import render


def test_autoscaling_role_arn_takes_partition_and_account_from_the_stack() -> None:
    stack = cdk.Stack(cdk.App(), "Test")
    NodeVolumeKey(stack, "NodeVolumeKey", description="test")
    (key,) = Template.from_stack(stack).find_resources("AWS::KMS::Key").values()
    principals = [render(s["Principal"]["AWS"]) for s in key["Properties"]["KeyPolicy"]["Statement"]]
    role_arn = f"arn:<Ref:AWS::Partition>:iam::<Ref:AWS::AccountId>:role/{AUTOSCALING_SERVICE_LINKED_ROLE}"
    assert principals.count(role_arn) == 2
