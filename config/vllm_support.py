"""What a pinned vLLM release supports, read from its facts file, and the checks that use it.

One facts file per image tag lives in config/vllm_facts/<tag>.json. tools/vllm_facts.py writes it
from the release's published wheel (argument parser, envs.py, config Literals, metric
constructors); the file records the wheel and its sha256. A model version may only name an image
tag that has a facts file, and only engine features that release has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from config.engine_flags import canonical_flag

FACTS_DIR = Path(__file__).resolve().parent / "vllm_facts"
# Where the "known quantization" of the registry maps onto vLLM's --quantization values. In the
# pinned release `awq`, `awq_marlin` and `auto_awq` all load through AutoAWQConfig, which picks
# the Marlin kernel where the GPU supports it; naming the Marlin variant states the intent and
# keeps a release that routes plain `awq` to the slow kernel (v0.11) from doing so silently.
QUANTIZATION_METHOD = {"awq": "awq_marlin", "gptq": "gptq_marlin", "fp8": "fp8"}
# Keys of --speculative-config this project writes (k8s_charts/vllm_args.py).
SPECULATIVE_CONFIG_KEYS = (
    "method",
    "model",
    "num_speculative_tokens",
    "prompt_lookup_max",
    "draft_tensor_parallel_size",
)


@dataclass(frozen=True)
class VllmFacts:
    image_tag: str
    serve_flags: frozenset[str]
    env_vars: frozenset[str]
    env_read_by_code: frozenset[str]
    speculative_methods: frozenset[str]
    speculative_config_keys: frozenset[str]
    quantization_methods: frozenset[str]
    load_formats: frozenset[str]
    runai_streamer_env: frozenset[str]
    metric_names: frozenset[str]
    """Every series name as exposed: counters with _total, histograms with _bucket/_sum/_count."""
    otel_sdk_in_image: bool
    http_routes: frozenset[str]
    """The server's decorated routes as '<METHOD> <path>'; which are attached depends on the model's tasks."""


def known_image_tags() -> list[str]:
    return sorted(path.stem for path in FACTS_DIR.glob("*.json"))


@cache
def facts_for(image_tag: str) -> VllmFacts:
    """The facts of one image tag; ValueError naming the known tags when there is none."""
    path = FACTS_DIR / f"{image_tag}.json"
    if not path.is_file():
        raise ValueError(
            f"no facts file for vLLM image tag {image_tag!r}; allowed: {known_image_tags()} "
            "(add one with `python -m tools.vllm_facts <wheel> config/vllm_facts`)"
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    metrics = data["metrics"]
    names = set(metrics["counters"]) | set(metrics["gauges"])
    for histogram in metrics["histograms"]:
        names |= {histogram, f"{histogram}_bucket", f"{histogram}_sum", f"{histogram}_count"}
    requirements = data["base_requirements"]
    return VllmFacts(
        image_tag=data["image_tag"],
        serve_flags=frozenset(data["serve_flags"]),
        env_vars=frozenset(data["env_vars"]),
        env_read_by_code=frozenset(data["env_read_by_code"]),
        speculative_methods=frozenset(data["speculative_methods"]),
        speculative_config_keys=frozenset(data["speculative_config_keys"]),
        quantization_methods=frozenset(data["quantization_methods"]),
        load_formats=frozenset(data["load_formats"]),
        runai_streamer_env=frozenset(data["runai_streamer_env"]),
        metric_names=frozenset(names),
        otel_sdk_in_image=all(requirements.values()),
        http_routes=frozenset(data["http_routes"]),
    )


def check_image_tag(image_tag: str) -> str:
    facts_for(image_tag)
    return image_tag


def check_engine(
    *, image_tag: str, quantization: str, speculative_method: str | None, extra_args: list[str]
) -> None:
    """ValueError naming the field, the value and what the release allows."""
    facts = facts_for(image_tag)
    method = QUANTIZATION_METHOD.get(quantization)
    if method is not None and method not in facts.quantization_methods:
        raise ValueError(
            f"engine.quantization {quantization!r} needs vLLM method {method!r}, which {image_tag} does "
            f"not have; allowed: {sorted(facts.quantization_methods)}"
        )
    if speculative_method is not None and speculative_method not in facts.speculative_methods:
        raise ValueError(
            f"engine.speculative.method {speculative_method!r} is not supported by vLLM {image_tag}; "
            f"allowed: {sorted(facts.speculative_methods)}"
        )
    # Compare the flag each token sets, so spellings vLLM accepts (`--max_num_seqs`, `--json-flag.key`,
    # `--flag=value`) are judged by the flag they mean, not by how they are written.
    unknown = [
        arg
        for arg in extra_args
        if arg.startswith("--")
        and (flag := canonical_flag(arg)) is not None
        and flag not in facts.serve_flags
    ]
    if unknown:
        raise ValueError(
            f"engine.extra_args {unknown} are not `vllm serve` flags in {image_tag} "
            f"(see config/vllm_facts/{image_tag}.json serve_flags for the allowed flags)"
        )
