"""Issue #14 item 1: the model API needs a key that lives in Secrets Manager and reaches vLLM only as
a Secret reference (env VLLM_API_KEY); /health stays open for the ALB."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from config.vllm_support import facts_for
from constructs_lib.addons import external_secrets
from contract.serving import API_KEY_ENV, API_KEY_SECRET, API_KEY_SECRET_FIELD, API_KEY_SECRET_STORE
from k8s_charts.model_ingress import FORWARDED_PATHS
from tests.synth import SynthResult
from tests.templates import (
    all_applied_manifests,
    applied_charts,
    chart_manifests,
    helm_releases,
    render,
    resources,
    statements,
)
from tests.unit.charts.helpers import charts_for, stage_config, stage_data
from tests.unit.config.test_stage_config import assert_rejected_naming
from tests.unit.tools.test_smoke_check_scripts import CURL, SMOKE_CHECK, run
from tools.gitops_export import stage_manifests

# vLLM releases whose API-key handling was read at the source (the wheel): vllm/envs.py reads
# VLLM_API_KEY; vllm/entrypoints/serve/middleware/{register,authenticate}.py install a bearer-token
# check for it on paths starting with /v1, /v2, /inference or /cohere only, so /health and /metrics
# stay open. (v0.11.0 guarded /v1 only and logged --api-key with the non-default args; v0.33.0
# redacts it.) Re-read before adding a release.
VERIFIED_VLLM_RELEASES = {"v0.33.0"}
KEY = "k3y-only-in-the-environment"
# The stub curl also records what it reads from a --config file.
CURL_READING_CONFIG = CURL.replace(
    'echo "curl $*" >>"$CALLS"',
    'echo "curl $*" >>"$CALLS"\n'
    'prev=""; for arg in "$@"; do [[ "$prev" != --config ]] || cat "$arg" >>"$CALLS_DIR/curl-config.log"; '
    'prev="$arg"; done',
)


def smoke_stubs(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {
        "curl": CURL_READING_CONFIG,
        "kubectl": "#!/usr/bin/env bash\n"
        'case "$*" in "get deployments"*) echo deployment.apps/m-v1 ;; '
        '"get ingress"*) printf k8s-models-alb.us-east-1.elb.amazonaws.com ;; esac\n',
        "aws": "#!/usr/bin/env bash\n",
    }.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    return tmp_path


def run_smoke_check(stubs: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    return run(SMOKE_CHECK, stubs, CALLS_DIR=str(stubs), **env)


def deployments(synth: SynthResult, stage: str) -> list[dict[str, Any]]:
    return [item for item in all_applied_manifests(synth, stage) if item["kind"] == "Deployment"]


def test_config_rejects_an_internet_facing_ingress_without_authentication() -> None:
    def mutate(data: dict[str, Any]) -> None:
        data["ingress"] = {"scheme": "internet-facing", "auth": "none"}

    assert_rejected_naming(mutate, ["ingress", "auth", "'none'", "internet-facing", "allowed: 'api-key'"])


def test_every_stage_requires_an_api_key(synth: SynthResult, stage: str) -> None:
    assert synth.configs[stage].ingress.auth == "api-key"


def test_the_vllm_release_in_use_had_its_api_key_handling_verified(synth: SynthResult, stage: str) -> None:
    tags = {version.image_tag for model in synth.configs[stage].models for version in model.versions}
    assert tags <= VERIFIED_VLLM_RELEASES, (
        f"re-verify VLLM_API_KEY handling for {tags - VERIFIED_VLLM_RELEASES}"
    )
    for tag in tags:
        # The release's own list of environment variables (config/vllm_facts, from the wheel).
        assert API_KEY_ENV in facts_for(tag).env_vars, tag


def test_vllm_gets_the_key_from_the_secret_by_reference_only(synth: SynthResult, stage: str) -> None:
    found = deployments(synth, stage)
    assert found
    # `model` routing checks the key once, at the gateway (tests/unit/charts/test_model_gateway.py).
    model_routing = synth.configs[stage].ingress.routing_mode == "model"
    for deployment in found:
        containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
        container = containers["vllm"]
        env = {item["name"]: item for item in container["env"]}
        # A filtering sidecar forwards the caller's header; it never holds the key itself.
        for name, other in containers.items():
            if name != "vllm":
                assert API_KEY_ENV not in {item["name"] for item in other.get("env", [])}, name
        if model_routing:
            assert API_KEY_ENV not in env
            continue
        assert env[API_KEY_ENV] == {
            "name": API_KEY_ENV,
            "valueFrom": {
                "secretKeyRef": {"name": API_KEY_SECRET, "key": API_KEY_SECRET_FIELD, "optional": False}
            },
        }
        assert not any(arg.startswith("--api-key") for arg in container["args"] + container["command"])


def test_a_stage_without_auth_gets_no_key_and_no_sync() -> None:
    data = stage_data()
    data["ingress"] = {"scheme": "internal", "auth": "none"}
    charts = charts_for(stage_config(data))
    assert charts.api_key is None
    for chart in charts.endpoints.values():
        (deployment,) = [item for item in chart_manifests(chart) if item["kind"] == "Deployment"]
        names = {item["name"] for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert API_KEY_ENV not in names


def test_the_secret_is_generated_by_cloudformation_under_its_own_key(synth: SynthResult, stage: str) -> None:
    template = synth.templates[stage]["Serving"]
    (secret,) = resources(template, "AWS::SecretsManager::Secret").values()
    properties = secret["Properties"]
    assert "SecretString" not in properties
    assert properties["GenerateSecretString"]["PasswordLength"] >= 64
    assert properties["GenerateSecretString"]["ExcludePunctuation"] is True
    key_id = properties["KmsKeyId"]["Fn::GetAtt"][0]
    assert template["Resources"][key_id]["Properties"]["EnableKeyRotation"] is True
    assert secret["DeletionPolicy"] == "Retain"


def test_no_template_or_export_holds_a_secret_value(synth: SynthResult, stage: str) -> None:
    for name, template in synth.templates[stage].items():
        for resource in resources(template, "AWS::SecretsManager::Secret").values():
            # Generated by CloudFormation, or copied by dynamic reference ({{resolve:...}}, the
            # Docker Hub cache credentials): never a literal value in the template.
            value = resource["Properties"].get("SecretString")
            if value is not None:
                copied = json.loads(value) if isinstance(value, str) else {}
                assert copied, name
                for field in copied.values():
                    assert field.startswith("{{resolve:secretsmanager:"), name
    exported = [item for items in stage_manifests(synth.configs[stage]).values() for item in items]
    applied = all_applied_manifests(synth, stage)
    for item in exported + applied:
        assert item["kind"] != "Secret", f"a Secret manifest {item['metadata']['name']} would carry data"


def test_external_secrets_syncs_the_key_from_a_namespaced_store(synth: SynthResult, stage: str) -> None:
    (store, external) = applied_charts(synth, stage)["api-key"]
    assert store["kind"] == "SecretStore"
    assert store["metadata"]["namespace"] == "models"
    # No auth block: the controller's own Pod Identity role, which may read this secret only.
    assert store["spec"]["provider"] == {
        "aws": {"service": "SecretsManager", "region": synth.configs[stage].region}
    }
    assert external["kind"] == "ExternalSecret"
    assert external["spec"]["secretStoreRef"] == {"kind": "SecretStore", "name": API_KEY_SECRET_STORE}
    assert external["spec"]["target"]["name"] == API_KEY_SECRET
    (item,) = external["spec"]["data"]
    assert item["secretKey"] == API_KEY_SECRET_FIELD


def test_the_export_names_the_secret_by_placeholder() -> None:
    exported = stage_manifests(stage_config(stage_data()))
    external = exported["api-key"][1]
    assert external["spec"]["data"][0]["remoteRef"]["key"] == "${API_KEY_SECRET_ARN}"


def test_operator_chart_is_pinned_and_processes_no_cluster_wide_stores(
    synth: SynthResult, stage: str
) -> None:
    release = helm_releases(synth.templates[stage]["Serving"])["external-secrets"]
    assert release["Repository"] == "https://charts.external-secrets.io"
    assert release["Version"] == external_secrets.SOURCE.version == "2.9.0"
    values = release["Values"]
    assert values["processClusterStore"] is False
    assert values["processClusterExternalSecret"] is False
    assert values["processPushSecret"] is False
    assert values["serviceAccount"]["name"] == external_secrets.CONTROLLER_SERVICE_ACCOUNT


def test_operator_role_reads_only_the_api_key(synth: SynthResult, stage: str) -> None:
    template = synth.templates[stage]["Serving"]
    (secret_id,) = resources(template, "AWS::SecretsManager::Secret")
    (association,) = [
        resource
        for resource in resources(template, "AWS::EKS::PodIdentityAssociation").values()
        if resource["Properties"]["ServiceAccount"] == external_secrets.CONTROLLER_SERVICE_ACCOUNT
    ]
    role = template["Resources"][association["Properties"]["RoleArn"]["Fn::GetAtt"][0]]
    by_sid = {statement["Sid"]: statement for statement in statements(role)}
    assert by_sid["ReadTheListedSecrets"]["Resource"] == {"Ref": secret_id}
    assert "kms:ViaService" in by_sid["DecryptThroughSecretsManager"]["Condition"]["StringEquals"]
    assert set(by_sid) == {"ReadTheListedSecrets", "DecryptThroughSecretsManager"}


def test_manifests_wait_for_the_operator(synth: SynthResult, stage: str) -> None:
    template = synth.templates[stage]["Serving"]
    operator = helm_releases(template)["external-secrets"]["LogicalId"]
    for logical_id, resource in resources(template, "Custom::AWSCDK-EKS-KubernetesResource").items():
        manifest = json.dumps(resource["Properties"]["Manifest"])
        if "ExternalSecret" in manifest:
            assert operator in resource.get("DependsOn", []), logical_id


def test_health_stays_reachable_without_a_key() -> None:
    # vLLM authenticates /v1* only; the ALB forwards /health for its health checks.
    assert ("/health", "Exact") in FORWARDED_PATHS


def test_smoke_check_reads_the_key_through_codebuild_secrets(synth: SynthResult, stage: str) -> None:
    template = synth.templates[stage]["SmokeCheck"]
    (project,) = resources(template, "AWS::CodeBuild::Project").values()
    buildspec = json.loads(render(project["Properties"]["Source"]["BuildSpec"]))
    reference = buildspec["env"]["secrets-manager"]["API_KEY"]
    assert reference.startswith("<Output:")
    assert "ApiKeySecret" in reference
    role_id = project["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
    policies = [
        resource
        for resource in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in resource["Properties"]["Roles"]
    ]
    granted = {
        statement["Sid"]: statement
        for policy in policies
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "Sid" in statement
    }
    assert granted["ReadTheApiKey"]["Action"] == "secretsmanager:GetSecretValue"
    assert "ApiKeySecret" in render(granted["ReadTheApiKey"]["Resource"])


def test_smoke_check_script_passes_the_key_as_curl_config_not_as_an_argument(tmp_path: Path) -> None:
    stubs = smoke_stubs(tmp_path)
    result, calls = run_smoke_check(
        stubs, CLUSTER_NAME="c", AWS_REGION="us-east-1", MODEL_IDS="m", API_KEY=KEY, ROUTING_MODE="header"
    )
    assert result.returncode == 0, result.stderr
    assert all(KEY not in call for call in calls)
    assert (stubs / "curl-config.log").read_text().strip() == f'header = "Authorization: Bearer {KEY}"'
