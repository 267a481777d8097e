"""Docker Hub images are pulled through the stage's ECR pull-through cache.

ECR user guide: a Docker Hub rule has upstream ``registry-1.docker.io`` (registry ``docker-hub``)
and credentials in a Secrets Manager secret named ``ecr-pullthroughcache/...`` (same account and
region) with keys ``username`` and ``accessToken``; a repository prefix is 2-30 characters; pulling
through the cache needs ``ecr:BatchImportUpstreamImage`` and ``ecr:CreateRepository``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from k8s_charts.images import DOCKER_HUB_CACHE_PREFIX, docker_hub_image
from tests.synth import SynthResult
from tests.templates import helm_releases, manifests, render, resources
from tests.unit.config.test_stage_config import assert_rejected_naming

PREFIX_PATTERN = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
MIRROR = "111111111111.dkr.ecr.us-east-1.amazonaws.com/docker-hub"


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("vllm/vllm-openai:v0.11.0", f"{MIRROR}/vllm/vllm-openai:v0.11.0"),
        ("docker.io/vllm/vllm-openai:v0.11.0", f"{MIRROR}/vllm/vllm-openai:v0.11.0"),
        ("otel/opentelemetry-collector-contrib", f"{MIRROR}/otel/opentelemetry-collector-contrib"),
        ("nginx:1.27", f"{MIRROR}/library/nginx:1.27"),
        ("docker.io/library/busybox@sha256:abc", f"{MIRROR}/library/busybox@sha256:abc"),
    ],
)
def test_docker_hub_references_map_into_the_cache(reference: str, expected: str) -> None:
    assert docker_hub_image(reference, mirror=MIRROR) == expected


def test_without_a_cache_references_are_unchanged() -> None:
    assert docker_hub_image("vllm/vllm-openai:v1", mirror="") == "vllm/vllm-openai:v1"


def test_other_registries_are_refused() -> None:
    with pytest.raises(ValueError, match="not a Docker Hub image"):
        docker_hub_image("quay.io/prometheus/node-exporter:v1", mirror=MIRROR)


def test_the_prefix_is_a_valid_ecr_repository_prefix() -> None:
    assert 2 <= len(DOCKER_HUB_CACHE_PREFIX) <= 30
    assert PREFIX_PATTERN.match(DOCKER_HUB_CACHE_PREFIX)


def _cluster(synth: SynthResult, stage: str) -> dict[str, Any]:
    return synth.templates[stage]["Cluster"]


def test_a_docker_hub_rule_with_credentials_from_the_operators_secret(synth: SynthResult, stage: str) -> None:
    config = synth.configs[stage]
    operator_secret = config.image_cache.docker_hub_secret_name
    assert operator_secret, f"{stage} has no Docker Hub cache configured"
    (rule,) = [
        r["Properties"] for r in resources(_cluster(synth, stage), "AWS::ECR::PullThroughCacheRule").values()
    ]
    assert rule["UpstreamRegistryUrl"] == "registry-1.docker.io"
    assert rule["UpstreamRegistry"] == "docker-hub"
    assert rule["EcrRepositoryPrefix"] == DOCKER_HUB_CACHE_PREFIX
    secret_id = rule["CredentialArn"]["Ref"]
    secret = _cluster(synth, stage)["Resources"][secret_id]["Properties"]
    assert secret["Name"].startswith("ecr-pullthroughcache/")
    secret_string = json.dumps(secret["SecretString"])
    for key in ("username", "accessToken"):
        assert f"{{{{resolve:secretsmanager:{operator_secret}:SecretString:{key}::}}}}" in secret_string


def test_nodes_may_fill_the_cache_under_its_prefix_only(synth: SynthResult, stage: str) -> None:
    template = _cluster(synth, stage)
    statements = [
        s
        for policy in resources(template, "AWS::IAM::Policy").values()
        if any(r["Ref"].startswith("NodeRole") for r in policy["Properties"]["Roles"])
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    (fill,) = [s for s in statements if s.get("Sid") == "FillThePullThroughCache"]
    assert sorted(fill["Action"]) == ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]
    assert render(fill["Resource"]).endswith(f":repository/{DOCKER_HUB_CACHE_PREFIX}/*")


def test_vllm_pulls_through_the_cache(synth: SynthResult, stage: str) -> None:
    containers = [
        container
        for m in manifests(synth.templates[stage]["Serving"])
        if m["kind"] == "Deployment"
        for container in m["spec"]["template"]["spec"]["containers"]
        if "vllm/vllm-openai" in container["image"]
    ]
    # vLLM in every version, and the filter sidecar (same image) in every filtered version.
    assert [c["name"] for c in containers].count("vllm") == sum(
        len(model.versions) for model in synth.configs[stage].models
    )
    assert [c["name"] for c in containers].count("guardrail-filter") == sum(
        len(model.versions) for model in synth.configs[stage].models if model.filtering.enabled
    )
    images = [container["image"] for container in containers]
    for image in images:
        assert re.match(rf"^.+\.dkr\.ecr\..+\..+/{DOCKER_HUB_CACHE_PREFIX}/vllm/vllm-openai:", image), image


def test_the_otel_collector_pulls_through_the_cache(synth: SynthResult, stage: str) -> None:
    values = helm_releases(synth.templates[stage]["Platform"])["opentelemetry-collector"]["Values"]
    assert re.match(
        rf"^.+\.dkr\.ecr\..+/{DOCKER_HUB_CACHE_PREFIX}/otel/opentelemetry-collector-contrib$",
        values["image"]["repository"],
    )


def test_config_refuses_the_cache_secrets_own_prefix() -> None:
    assert_rejected_naming(
        lambda d: d.update(image_cache={"docker_hub_secret_name": "ecr-pullthroughcache/x"}),
        ["image_cache.docker_hub_secret_name", "not starting with ecr-pullthroughcache/"],
    )
