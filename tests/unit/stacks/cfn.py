"""Read CloudFormation intrinsics in templates as text, so Helm values and manifests can be parsed."""

from __future__ import annotations

import json
from typing import Any


def render(value: Any) -> str:
    """A template value as a string; references become ``<Ref:X>``, ``<GetAtt:X.Y>`` or ``<Output:Name>``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Fn::Join":
            separator, parts = argument
            return str(separator).join(render(part) for part in parts)
        if function == "Ref":
            return f"<Ref:{argument}>"
        if function == "Fn::GetAtt":
            return f"<GetAtt:{'.'.join(argument)}>"
        if function == "Fn::GetStackOutput":
            return f"<Output:{argument['OutputName']}>"
    raise AssertionError(f"cannot render {value!r}")


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def helm_releases(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Chart name -> the release's properties, with ``Values`` parsed (references rendered as text)."""
    releases = {}
    for logical_id, resource in resources(template, "Custom::AWSCDK-EKS-HelmChart").items():
        properties = dict(resource["Properties"])
        properties["Values"] = json.loads(render(properties.get("Values", "{}")))
        properties["LogicalId"] = logical_id
        properties["DependsOn"] = resource.get("DependsOn", [])
        releases[properties["Chart"]] = properties
    return releases


def manifests(template: dict[str, Any]) -> list[dict[str, Any]]:
    documents = []
    for resource in resources(template, "Custom::AWSCDK-EKS-KubernetesResource").values():
        documents += json.loads(render(resource["Properties"]["Manifest"]))
    return documents


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
