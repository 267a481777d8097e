"""Each kind of bad model-registry, ingress or WAF entry fails with a message naming file, field and fix."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.unit.config.test_stage_config import assert_rejected_naming


def _model(data: dict[str, Any]) -> dict[str, Any]:
    model: dict[str, Any] = data["models"][0]
    return model


def _version(data: dict[str, Any]) -> dict[str, Any]:
    version: dict[str, Any] = _model(data)["versions"][0]
    return version


def _engine(data: dict[str, Any]) -> dict[str, Any]:
    engine: dict[str, Any] = _version(data)["engine"]
    return engine


def _add_canary(data: dict[str, Any], weight: int, name: str = "v2") -> None:
    canary = copy.deepcopy(_version(data))
    canary.update(name=name, weight=weight)
    _model(data)["versions"].append(canary)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda d: _add_canary(d, 10),
            ["models[0].versions", "version weights sum to 110 (v1=100, v2=10)", "allowed: exactly 100"],
            id="weights-not-100",
        ),
        pytest.param(
            lambda d: _model(d)["slo"].update(ttft_p95_seconds=1.5),
            [
                "models[0].slo.ttft_p95_seconds",
                "1.5 s is not a bucket bound of vllm:time_to_first_token_seconds",
                "allowed: 0.001",
                "1, 2.5, 5",
            ],
            id="ttft-threshold-between-buckets",
        ),
        pytest.param(
            lambda d: _model(d)["slo"].update(availability_objective=0.99999),
            ["models[0].slo.availability_objective", "less than or equal to 0.9999"],
            id="availability-objective-beyond-measurable",
        ),
        pytest.param(
            lambda d: _add_canary(d, 0, name="v1"),
            ["models[0].versions", "duplicate version names ['v1']"],
            id="duplicate-version-names",
        ),
        pytest.param(
            lambda d: _version(d).update(gpus_per_replica=2),
            [
                "models[llama-3-1-8b].versions[v1].gpus_per_replica 2 (tensor parallel size)",
                "node group 'a10g-spot' with 1 GPUs per node",
            ],
            id="tensor-parallel-exceeds-node-gpus",
        ),
        pytest.param(
            lambda d: _version(d).update(weights_gib=30),
            [
                "weights_gib 30 needs about 36.0 GiB with headroom",
                "1.0 GiB of KV cache for one 8192-token sequence",
                "1 x A10G (24 GiB)",
                "quantization, a shorter max_model_len or a larger GPU",
            ],
            id="model-exceeds-gpu-memory",
        ),
        pytest.param(
            lambda d: _engine(d).update(max_model_len=0),
            ["models[0].versions[0].engine.max_model_len", "greater than 0"],
            id="max-model-len-not-positive",
        ),
        pytest.param(
            lambda d: _engine(d).update(quantization="int3"),
            ["engine.quantization", "'none', 'awq', 'gptq' or 'fp8'", "'int3'"],
            id="unknown-quantization",
        ),
        pytest.param(
            lambda d: _model(d).update(id="Llama_3"),
            ["models[0].id", "allowed: a DNS label: 1 to 63 lower-case letters", "(got 'Llama_3')"],
            id="id-not-dns-safe",
        ),
        pytest.param(
            lambda d: _model(d).update(id="3-llama"),
            ["models[0].id", "must start with a letter"],
            id="id-starts-with-digit",
        ),
        pytest.param(
            lambda d: (_model(d).update(id="a" * 50), _version(d).update(name="v" * 13)),
            ["models[0]", "(<id>-<version>) has 64 characters; allowed: at most 63"],
            id="instance-name-too-long",
        ),
        pytest.param(
            lambda d: d["models"].append(copy.deepcopy(_model(d))),
            ["models", "duplicate model ids ['llama-3-1-8b']"],
            id="duplicate-model-ids",
        ),
        pytest.param(
            lambda d: _version(d).update(node_groups=["h100"]),
            ["versions[v1].node_groups", "'h100' is not a GPU node group", "allowed: ['a10g-spot']"],
            id="unknown-node-group",
        ),
        pytest.param(
            lambda d: _version(d).update(source="ftp://models/llama"),
            ["versions[0].source", "is not a model source", "allowed: bucket://<prefix>"],
            id="bad-source",
        ),
        pytest.param(
            lambda d: _engine(d).update(
                speculative={"method": "draft_model", "draft_model": "ftp://x", "num_speculative_tokens": 3}
            ),
            ["speculative.draft_model", "'ftp://x' is not a model source"],
            id="bad-draft-source",
        ),
        pytest.param(
            lambda d: _engine(d).update(speculative={"method": "draft_model", "num_speculative_tokens": 3}),
            ["speculative.draft_model is required when method is draft_model"],
            id="draft-model-missing",
        ),
        pytest.param(
            lambda d: _engine(d).update(speculative={"method": "eagle", "num_speculative_tokens": 3}),
            ["speculative.method", "'ngram' or 'draft_model'"],
            id="unknown-speculative-method",
        ),
        pytest.param(
            lambda d: _engine(d).update(extra_args=["--tensor-parallel-size=2"]),
            [
                "engine.extra_args: '--tensor-parallel-size=2' overrides --tensor-parallel-size",
                "remove it (set gpus_per_replica)",
            ],
            id="extra-args-clash",
        ),
        pytest.param(
            lambda d: _version(d).update(image_tag="latest"),
            ["image_tag", "must be a pinned tag"],
            id="unpinned-image",
        ),
        pytest.param(
            lambda d: _model(d)["autoscaling"].update(min_replicas=3, max_replicas=2),
            ["autoscaling", "min_replicas 3 is greater than max_replicas 2"],
            id="min-replicas-above-max",
        ),
        pytest.param(
            lambda d: _model(d)["autoscaling"].update(fallback_replicas=5),
            ["autoscaling", "fallback_replicas 5 is outside [min_replicas, max_replicas] = [1, 2]"],
            id="fallback-outside-bounds",
        ),
        pytest.param(
            lambda d: d["ingress"].update(domain="llm.example.com"),
            ["ingress", "certificate_arn is required when ingress.domain is set"],
            id="domain-without-certificate",
        ),
        pytest.param(
            lambda d: d["ingress"].update(scheme="public"),
            ["ingress.scheme", "'internal' or 'internet-facing'"],
            id="unknown-scheme",
        ),
        pytest.param(
            lambda d: d["waf"].update(allow_cidrs=["10.0.0.300/32"]),
            ["waf.allow_cidrs", "'10.0.0.300/32' is not a valid CIDR"],
            id="bad-allow-cidr",
        ),
    ],
)
def test_bad_registry_entry_names_file_field_and_allowed(mutate: Any, expected: list[str]) -> None:
    assert_rejected_naming(mutate, expected)
