"""Every engine option of the registry becomes the vLLM flag it means, and nothing else changes."""

from __future__ import annotations

import json

import pytest

from config.serving import ModelVersion
from k8s_charts.vllm_args import command_line, vllm_args
from tests.unit.charts.helpers import stage_config, stage_data, with_engine

BUCKET = "models-bucket"


def args_of(version: ModelVersion) -> list[str]:
    return vllm_args(version, model_bucket_name=BUCKET)


def flag(args: list[str], name: str) -> str:
    assert name in args, f"{name} missing from {args}"
    return args[args.index(name) + 1]


def dev_version(**engine: object) -> ModelVersion:
    return with_engine(**engine).models[0].versions[0]


def test_stage_bucket_source_becomes_s3_path_streamed_by_runai() -> None:
    args = args_of(dev_version())
    assert args[0] == f"s3://{BUCKET}/llama-3-1-8b-instruct-awq"
    assert flag(args, "--load-format") == "runai_streamer"


def test_hugging_face_source_is_passed_through_without_s3_streaming() -> None:
    data = stage_data()
    data["models"][0]["versions"][0]["source"] = "meta-llama/Llama-3.1-8B-Instruct"
    args = args_of(stage_config(data).models[0].versions[0])
    assert args[0] == "meta-llama/Llama-3.1-8B-Instruct"
    assert "--load-format" not in args


def test_served_name_port_and_tensor_parallel_size_come_from_the_version() -> None:
    data = stage_data("prod")
    version = stage_config(data, "prod").models[1].versions[0]
    args = args_of(version)
    assert flag(args, "--served-model-name") == "llama-3-1-70b"
    assert flag(args, "--port") == "8000"
    assert flag(args, "--tensor-parallel-size") == "4"


@pytest.mark.parametrize(
    ("quantization", "method"), [("awq", "awq_marlin"), ("gptq", "gptq_marlin"), ("fp8", "fp8")]
)
def test_quantization_flag_names_the_marlin_kernels_for_awq_and_gptq(quantization: str, method: str) -> None:
    assert flag(args_of(dev_version(quantization=quantization)), "--quantization") == method


def test_no_quantization_flag_when_none() -> None:
    assert "--quantization" not in args_of(dev_version(quantization="none"))


@pytest.mark.parametrize("dtype", ["auto", "float16", "bfloat16"])
def test_dtype_flag(dtype: str) -> None:
    assert flag(args_of(dev_version(dtype=dtype)), "--dtype") == dtype


def test_length_sequences_and_memory_flags() -> None:
    args = args_of(dev_version(max_num_seqs=32, gpu_memory_utilization=0.85))
    assert flag(args, "--max-model-len") == "8192"
    assert flag(args, "--max-num-seqs") == "32"
    assert flag(args, "--gpu-memory-utilization") == "0.85"


def test_prefix_caching_on_and_off() -> None:
    assert "--enable-prefix-caching" in args_of(dev_version(enable_prefix_caching=True))
    off = args_of(dev_version(enable_prefix_caching=False))
    assert "--no-enable-prefix-caching" in off
    assert "--enable-prefix-caching" not in off


def test_ngram_speculative_config() -> None:
    version = dev_version(
        speculative={"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_max": 5}
    )
    assert json.loads(flag(args_of(version), "--speculative-config")) == {
        "method": "ngram",
        "num_speculative_tokens": 3,
        "prompt_lookup_max": 5,
    }


def test_draft_model_speculative_config_reads_the_draft_from_the_stage_bucket() -> None:
    version = dev_version(
        speculative={
            "method": "draft_model",
            "draft_model": "bucket://drafts/small",
            "num_speculative_tokens": 5,
        }
    )
    assert json.loads(flag(args_of(version), "--speculative-config")) == {
        "method": "draft_model",
        "model": f"s3://{BUCKET}/drafts/small",
        "num_speculative_tokens": 5,
        "draft_tensor_parallel_size": 1,
    }


def test_no_speculative_config_without_speculative_decoding() -> None:
    assert "--speculative-config" not in args_of(dev_version())


def test_extra_args_come_last_in_order() -> None:
    args = args_of(dev_version(extra_args=["--enforce-eager", "--seed", "7"]))
    assert args[-3:] == ["--enforce-eager", "--seed", "7"]


def test_command_line_is_vllm_serve() -> None:
    assert command_line(dev_version(), model_bucket_name=BUCKET).startswith("vllm serve s3://")
