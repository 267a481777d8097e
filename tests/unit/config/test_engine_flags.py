"""extra_args are checked against the flags k8s_charts/vllm_args.py really generates, in every spelling."""

from __future__ import annotations

import pytest

from config import parse_stage
from config.engine_flags import canonical_flag, generated_flags
from config.serving import ModelVersion
from k8s_charts.vllm_args import vllm_args
from tests.unit.config.cases import stage_data


def version(stage: str = "dev", model: int = 0) -> ModelVersion:
    config = parse_stage(stage_data(stage), name=stage, source=f"config/{stage}.yaml")
    return config.models[model].versions[0]


def test_every_flag_of_a_rendered_command_line_is_guarded() -> None:
    for stage, model in (("dev", 0), ("staging", 0), ("prod", 1)):
        rendered = {
            flag
            for token in vllm_args(version(stage, model), model_bucket_name="b")
            if (flag := canonical_flag(token))
        }
        assert rendered <= generated_flags(version(stage, model))


def test_optional_flags_are_guarded_even_when_the_version_does_not_use_them() -> None:
    plain = version("dev")  # no speculative decoding, prefix caching on
    assert {
        "--speculative-config",
        "--quantization",
        "--load-format",
        "--enable-prefix-caching",
    } <= generated_flags(plain)


@pytest.mark.parametrize(
    ("token", "flag"),
    [
        ("--max-model-len", "--max-model-len"),
        ("--max-model-len=4096", "--max-model-len"),
        ("--max_model_len=4096", "--max-model-len"),
        ("-tp", "--tensor-parallel-size"),
        ("-q=awq", "--quantization"),
        ("--no-enable-prefix-caching", "--enable-prefix-caching"),
        ("--speculative-config.num_speculative_tokens=3", "--speculative-config"),
        ("--speculative_config.method", "--speculative-config"),
        ("4096", None),
        ("-1", None),
    ],
)
def test_spellings_vllm_accepts_map_to_one_flag(token: str, flag: str | None) -> None:
    assert canonical_flag(token) == flag


def test_flags_the_registry_does_not_generate_are_allowed() -> None:
    data = stage_data("dev")
    data["models"][0]["versions"][0]["engine"]["extra_args"] = [
        "--enable-chunked-prefill",
        "--max-num-batched-tokens=8192",
    ]
    config = parse_stage(data, name="dev", source="config/dev.yaml")
    assert config.models[0].versions[0].engine.extra_args == [
        "--enable-chunked-prefill",
        "--max-num-batched-tokens=8192",
    ]
