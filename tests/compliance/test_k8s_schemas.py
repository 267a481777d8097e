"""Every manifest every stage applies validates against its schema.

Core kinds: kubernetes-validate, strict mode (unknown fields are errors), Kubernetes 1.36 (the
package ships 1.36 schemas, so no fallback is needed). Custom resources: KEDA's ScaledObject
against the vendored openAPIV3Schema in tests/schemas/ (source and version in its $comment).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate.utils import all_versions, major_minor

from config.kubernetes_releases import TOOLING_RELEASE
from tests.synth import SynthResult
from tests.templates import all_applied_manifests

KUBERNETES_VERSION = TOOLING_RELEASE
SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
# The External Secrets schemas come from tools/crd_schema.py (source and version in their $comment).
CUSTOM_RESOURCE_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): SCHEMAS / "keda-scaledobject-v1alpha1.json",
    ("external-secrets.io/v1", "SecretStore"): SCHEMAS / "eso-secretstore-v1.json",
    ("external-secrets.io/v1", "ExternalSecret"): SCHEMAS / "eso-externalsecret-v1.json",
    # `model` routing (tools/gateway_crd_schemas.py, from the pinned Envoy Gateway / AI Gateway charts).
    ("gateway.networking.k8s.io/v1", "Gateway"): SCHEMAS / "gatewayapi-gateway-v1.json",
    ("gateway.networking.k8s.io/v1", "GatewayClass"): SCHEMAS / "gatewayapi-gatewayclass-v1.json",
    ("gateway.envoyproxy.io/v1alpha1", "EnvoyProxy"): SCHEMAS / "eg-envoyproxy-v1alpha1.json",
    ("gateway.envoyproxy.io/v1alpha1", "Backend"): SCHEMAS / "eg-backend-v1alpha1.json",
    ("gateway.envoyproxy.io/v1alpha1", "ClientTrafficPolicy"): (
        SCHEMAS / "eg-clienttrafficpolicy-v1alpha1.json"
    ),
    ("gateway.envoyproxy.io/v1alpha1", "HTTPRouteFilter"): SCHEMAS / "eg-httproutefilter-v1alpha1.json",
    ("gateway.envoyproxy.io/v1alpha1", "BackendTrafficPolicy"): (
        SCHEMAS / "eg-backendtrafficpolicy-v1alpha1.json"
    ),
    ("gateway.envoyproxy.io/v1alpha1", "SecurityPolicy"): SCHEMAS / "eg-securitypolicy-v1alpha1.json",
    ("aigateway.envoyproxy.io/v1beta1", "AIGatewayRoute"): SCHEMAS / "aigw-aigatewayroute-v1beta1.json",
    ("aigateway.envoyproxy.io/v1beta1", "AIServiceBackend"): SCHEMAS / "aigw-aiservicebackend-v1beta1.json",
}


def validate(manifest: dict[str, Any]) -> None:
    key = (manifest["apiVersion"], manifest["kind"])
    if key in CUSTOM_RESOURCE_SCHEMAS:
        schema = json.loads(CUSTOM_RESOURCE_SCHEMAS[key].read_text())
        jsonschema.Draft202012Validator(schema).validate(manifest)
        return
    validated = kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    assert validated == KUBERNETES_VERSION, f"validated against {validated}, not {KUBERNETES_VERSION}"


def test_kubernetes_validate_ships_the_target_version() -> None:
    assert KUBERNETES_VERSION in [major_minor(version) for version in all_versions()]


def test_every_applied_manifest_validates(synth: SynthResult, stage: str) -> None:
    manifests = all_applied_manifests(synth, stage)
    kinds = {manifest["kind"] for manifest in manifests}
    assert {
        "Deployment",
        "Service",
        "ScaledObject",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Ingress",
        "SecretStore",
        "ExternalSecret",
    } <= kinds
    for manifest in manifests:
        validate(manifest)


def _first(synth: SynthResult, kind: str) -> dict[str, Any]:
    return next(m for m in all_applied_manifests(synth, "dev") if m["kind"] == kind)


@pytest.mark.parametrize(
    ("kind", "path", "bad_key"),
    [
        pytest.param(
            "Deployment", ["spec", "template", "spec", "containers", 0], "imagePullPolicyy", id="core"
        ),
        pytest.param("ScaledObject", ["spec", "fallback"], "replica", id="keda"),
    ],
)
def test_validation_rejects_an_unknown_field(
    synth: SynthResult, kind: str, path: list[Any], bad_key: str
) -> None:
    manifest = json.loads(json.dumps(_first(synth, kind)))
    target = manifest
    for part in path:
        target = target[part]
    target[bad_key] = "x"
    with pytest.raises((kubernetes_validate.ValidationError, jsonschema.ValidationError)):
        validate(manifest)


def test_scaled_object_schema_rejects_a_missing_trigger_metadata(synth: SynthResult) -> None:
    manifest = json.loads(json.dumps(_first(synth, "ScaledObject")))
    del manifest["spec"]["triggers"][0]["metadata"]
    with pytest.raises(jsonschema.ValidationError):
        validate(manifest)
