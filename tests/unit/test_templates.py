"""tests/templates.py's render spells each intrinsic one way and refuses what it cannot spell."""

from __future__ import annotations

import pytest

from tests.templates import as_list, one, render, role_statements


def test_render_spells_references_joins_and_subs() -> None:
    value = {
        "Fn::Join": [
            ":",
            [
                "arn",
                {"Ref": "AWS::Partition"},
                {"Fn::GetAtt": ["Bucket", "Arn"]},
                {"Fn::GetStackOutput": {"OutputName": "Out", "StackName": "s"}},
                {"Fn::Sub": "role/${AWS::AccountId}/${Key.Arn}/${!Literal}"},
                {"Fn::Sub": ["${Name}-x", {"Name": {"Ref": "Thing"}}]},
            ],
        ]
    }
    assert render(value) == (
        "arn:<Ref:AWS::Partition>:<GetAtt:Bucket.Arn>:<Output:Out>"
        ":role/<Ref:AWS::AccountId>/<GetAtt:Key.Arn>/${!Literal}:<Ref:Thing>-x"
    )


def test_render_refuses_an_intrinsic_it_cannot_spell() -> None:
    with pytest.raises(AssertionError, match="cannot render"):
        render({"Fn::Select": [0, ["a"]]})


def test_one_and_role_statements() -> None:
    template = {
        "Resources": {
            "RoleA": {"Type": "AWS::IAM::Role"},
            "RoleB": {"Type": "AWS::IAM::Role"},
            "Policy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {"Roles": [{"Ref": "RoleB"}], "PolicyDocument": {"Statement": [{"Sid": "S"}]}},
            },
        }
    }
    assert one(template, "AWS::IAM::Role", "RoleB")[0] == "RoleB"
    with pytest.raises(AssertionError, match="expected one AWS::IAM::Role"):
        one(template, "AWS::IAM::Role")
    assert role_statements(template, {"Fn::GetAtt": ["RoleB", "Arn"]}) == [{"Sid": "S"}]
    assert role_statements(template, "RoleA") == []
    assert as_list("a") == ["a"]
    assert as_list(["a"]) == ["a"]
