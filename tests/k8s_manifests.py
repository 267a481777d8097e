"""The Kubernetes manifests a synthesised serving stack applies, read back from its template.

CloudFormation intrinsics inside a manifest (bucket names, ARNs, imports) are rendered as opaque
markers «<hash>», so the result parses as JSON and compares value by value.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aws_cdk import Stack

from tests.synth import SynthResult

MANIFEST_RESOURCE = "Custom::AWSCDK-EKS-KubernetesResource"
PRUNE_LABEL_PREFIX = "aws.cdk.eks/prune-"


def marker(intrinsic: Any) -> str:
    digest = hashlib.sha256(json.dumps(intrinsic, sort_keys=True).encode()).hexdigest()[:12]
    return f"«{digest}»"


def render(value: Any) -> str:
    """A CloudFormation string value with every intrinsic replaced by its marker."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return str(separator).join(render(part) for part in parts)
    return marker(value)


def without_prune_labels(manifest: dict[str, Any]) -> dict[str, Any]:
    labels = manifest.get("metadata", {}).get("labels")
    if labels is not None:
        for key in [key for key in labels if key.startswith(PRUNE_LABEL_PREFIX)]:
            del labels[key]
        if not labels:
            del manifest["metadata"]["labels"]
    return manifest


def applied_manifests(synth: SynthResult, stage: str) -> dict[str, list[dict[str, Any]]]:
    """{logical id: manifests} of every manifest resource of the stage's serving stack."""
    resources = synth.templates[stage]["Serving"]["Resources"]
    return {
        logical_id: [
            without_prune_labels(item) for item in json.loads(render(resource["Properties"]["Manifest"]))
        ]
        for logical_id, resource in resources.items()
        if resource["Type"] == MANIFEST_RESOURCE
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
    return [item for manifests in applied_manifests(synth, stage).values() for item in manifests]
