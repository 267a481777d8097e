"""Issue #14 item 4: the Load Balancer Controller's role keeps no unconditioned mutating call on '*'."""

from __future__ import annotations

import json
from typing import Any

from constructs_lib.addons.alb_controller import POLICY_FILE, controller_values
from constructs_lib.addons.alb_controller.scoped_policy import (
    CONTROLLER_LOAD_BALANCERS,
    LISTENER_ACTIONS,
    scoped_policy,
)
from tests.synth import SynthResult
from tests.templates import helm_releases, resources

READ_VERBS = ("Describe", "Get", "List")
VPC = "arn:aws:ec2:us-west-2:1:vpc/vpc-1"
ACL = "arn:aws:wafv2:us-west-2:1:regional/webacl/edge/1"


def flat(document: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    out = []
    for statement in document["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        out += [(action, statement["Resource"], statement.get("Condition")) for action in actions]
    return out


def test_no_unconditioned_write_on_every_resource() -> None:
    narrowed = scoped_policy(json.loads(POLICY_FILE.read_text()), vpc_arn=VPC, web_acl_arn=ACL)
    for action, resource, condition in flat(narrowed):
        if resource == "*" and condition is None:
            assert action.split(":")[1].startswith(READ_VERBS), action


def test_security_group_ingress_only_in_the_stage_vpc() -> None:
    narrowed = flat(scoped_policy(json.loads(POLICY_FILE.read_text()), vpc_arn=VPC, web_acl_arn=ACL))
    ingress = [(r, c) for a, r, c in narrowed if a == "ec2:AuthorizeSecurityGroupIngress"]
    # The published tag-conditioned statement stays; the unconditioned one now needs this VPC.
    assert ("arn:aws:ec2:*:*:security-group/*", {"ArnEquals": {"ec2:Vpc": VPC}}) in ingress
    assert all(c is not None for _, c in ingress)
    (create,) = [r for a, r, c in narrowed if a == "ec2:CreateSecurityGroup"]
    assert VPC in create


def test_listener_rule_and_web_acl_calls_only_on_the_controllers_load_balancers() -> None:
    narrowed = flat(scoped_policy(json.loads(POLICY_FILE.read_text()), vpc_arn=VPC, web_acl_arn=ACL))
    for action, resource, _ in narrowed:
        if action in LISTENER_ACTIONS:
            assert resource == CONTROLLER_LOAD_BALANCERS, action
        if action in ("wafv2:AssociateWebACL", "wafv2:DisassociateWebACL"):
            assert resource == [ACL, CONTROLLER_LOAD_BALANCERS[0]], action
    assert not [a for a, _, _ in narrowed if a.startswith(("waf-regional:", "shield:"))]


def test_chart_turns_off_waf_classic_and_shield_whose_permissions_are_gone(
    synth: SynthResult, stage: str
) -> None:
    values = helm_releases(synth.templates[stage]["Serving"])["aws-load-balancer-controller"]["Values"]
    assert (values["enableWaf"], values["enableShield"], values["enableWafv2"]) == (False, False, True)
    assert controller_values(cluster_name="c", region="r", vpc_id="v")["enableShield"] is False


def test_synthesised_role_uses_the_stage_vpc_and_web_acl(synth: SynthResult, stage: str) -> None:
    template = synth.templates[stage]["Serving"]
    (role,) = [
        r for name, r in resources(template, "AWS::IAM::Role").items() if name.startswith("AlbControllerRole")
    ]
    text = json.dumps(role["Properties"]["Policies"])
    assert '"ec2:Vpc"' in text
    assert "EdgeWebAcl" in text
