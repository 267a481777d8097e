"""Read synthesised CloudFormation templates, and the Kubernetes manifests they and cdk8s charts hold.

The one set of template and manifest helpers for every test. Templates are the JSON dicts of the
session fixtures `synth` and `pipeline_synth` (tests/conftest.py); where a fine-grained match reads
better, tests use CDK's own `Template`/`Match` (`synth.template(stage, stack)`).

`render` turns a CloudFormation value into text, so Helm values, manifests, build specs and ARNs can
be parsed and compared: references become ``<Ref:X>``, ``<GetAtt:X.Y>`` or ``<Output:Name>``, also
inside ``Fn::Sub``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import cdk8s
from aws_cdk import Stack

from tests.synth import SynthResult

Resource = dict[str, Any]

MANIFEST = "Custom::AWSCDK-EKS-KubernetesResource"
HELM_CHART = "Custom::AWSCDK-EKS-HelmChart"
PRUNE_LABEL_PREFIX = "aws.cdk.eks/prune-"


# CloudFormation values -------------------------------------------------------------------------


def render(value: Any) -> str:
    """A template value as a string; fails on an intrinsic it cannot spell, rather than guessing."""
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
        if function == "Fn::Sub":
            template, variables = (argument, {}) if isinstance(argument, str) else argument
            return re.sub(r"\$\{([^}!][^}]*)\}", lambda m: _sub_reference(m.group(1), variables), template)
    raise AssertionError(f"cannot render {value!r}")


def _sub_reference(name: str, variables: dict[str, Any]) -> str:
    """A ``${name}`` of Fn::Sub: a variable of its map, else a Ref (``X``) or a GetAtt (``X.Y``)."""
    if name in variables:
        return render(variables[name])
    return f"<GetAtt:{name}>" if "." in name else f"<Ref:{name}>"


def referenced_id(value: Any) -> str:
    """The logical id behind ``{"Ref": id}`` or ``{"Fn::GetAtt": [id, attribute]}``."""
    if "Ref" in value:
        return str(value["Ref"])
    return str(value["Fn::GetAtt"][0])


def as_list(value: Any) -> list[Any]:
    """IAM allows a single action, resource or principal where a list belongs."""
    return value if isinstance(value, list) else [value]


# Resources ---------------------------------------------------------------------------------------


def resources(template: dict[str, Any], kind: str) -> dict[str, Resource]:
    """{logical id: resource} of every resource of type `kind`."""
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def one(template: dict[str, Any], kind: str, prefix: str = "") -> tuple[str, Resource]:
    """(logical id, resource) of the only resource of type `kind` whose logical id starts with `prefix`."""
    found = [(lid, resource) for lid, resource in resources(template, kind).items() if lid.startswith(prefix)]
    assert len(found) == 1, f"expected one {kind} {prefix}*, found {[lid for lid, _ in found]}"
    return found[0]


def statements(role: Resource) -> list[dict[str, Any]]:
    """The statements of a role's inline policies."""
    return [
        statement
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def role_statements(template: dict[str, Any], role: Any) -> list[dict[str, Any]]:
    """The statements of every AWS::IAM::Policy attached to `role` (a logical id, Ref or GetAtt)."""
    role_id = role if isinstance(role, str) else referenced_id(role)
    return [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def helm_releases(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Chart name -> the release's properties, with ``Values`` parsed (references rendered as text)."""
    releases = {}
    for logical_id, resource in resources(template, HELM_CHART).items():
        properties = dict(resource["Properties"])
        properties["Values"] = json.loads(render(properties.get("Values", "{}")))
        properties["LogicalId"] = logical_id
        properties["DependsOn"] = resource.get("DependsOn", [])
        releases[properties["Chart"]] = properties
    return releases


# Kubernetes manifests applied by CloudFormation ----------------------------------------------------


def manifests_by_id(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """{logical id: the manifests it applies} of every manifest resource, exactly as the template has them."""
    return {
        logical_id: json.loads(render(resource["Properties"]["Manifest"]))
        for logical_id, resource in resources(template, MANIFEST).items()
    }


def manifests(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Every manifest the template applies, in template order."""
    return [item for items in manifests_by_id(template).values() for item in items]


def without_prune_labels(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest without the labels CDK adds for pruning (the GitOps export has none)."""
    labels = manifest.get("metadata", {}).get("labels")
    if labels is not None:
        for key in [key for key in labels if key.startswith(PRUNE_LABEL_PREFIX)]:
            del labels[key]
        if not labels:
            del manifest["metadata"]["labels"]
    return manifest


def applied_manifests(synth: SynthResult, stage: str) -> dict[str, list[dict[str, Any]]]:
    """{logical id: manifests} of the stage's serving stack, without CDK's prune labels."""
    return {
        logical_id: [without_prune_labels(item) for item in items]
        for logical_id, items in manifests_by_id(synth.templates[stage]["Serving"]).items()
    }


def applied_charts(synth: SynthResult, stage: str) -> dict[str, list[dict[str, Any]]]:
    """{chart name: manifests} for the charts the serving stack applies."""
    serving = synth.stages[stage].serving
    by_logical_id = applied_manifests(synth, stage)
    charts = {}
    for name, manifest in serving.manifests.items():
        resource = manifest.node.find_child("Resource").node.default_child
        logical_id = Stack.of(serving).resolve(Stack.of(serving).get_logical_id(resource))  # type: ignore[arg-type]
        charts[name] = by_logical_id[logical_id]
    return charts


def all_applied_manifests(synth: SynthResult, stage: str) -> list[dict[str, Any]]:
    return [item for items in applied_manifests(synth, stage).values() for item in items]


# Kubernetes manifests of a cdk8s chart -------------------------------------------------------------


def chart_manifests(chart: cdk8s.Chart) -> list[dict[str, Any]]:
    """The manifests a cdk8s chart synthesises (cdk8s.Testing, no app output)."""
    return list(cdk8s.Testing.synth(chart))


def of_kind(chart: cdk8s.Chart, kind: str) -> dict[str, Any]:
    """The chart's only manifest of `kind`."""
    found = [manifest for manifest in chart_manifests(chart) if manifest["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]
