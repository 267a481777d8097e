"""The vLLM OpenAI server command line of one model version, generated from the registry.

Plain functions with no cdk8s import, so the command line can be printed and tested on its own.
"""

from __future__ import annotations

import json
import shlex

from config.serving import STAGE_BUCKET_SCHEME, ModelVersion, Quantization, SpeculativeMethod
from config.vllm_support import QUANTIZATION_METHOD
from contract.telemetry import OTLP_TRACES_ENDPOINT
from k8s_charts.shutdown import shutdown_timing

VLLM_PORT = 8000
VLLM_IMAGE = "vllm/vllm-openai"
VLLM_COMMAND = ["vllm", "serve"]
# Streams safetensors straight from S3 into GPU memory: no copy on local disk, no init container.
S3_LOAD_FORMAT = "runai_streamer"


def resolve_source(source: str, *, model_bucket_name: str) -> str:
    """The model path vLLM loads: bucket://<prefix> becomes s3://<stage model bucket>/<prefix>."""
    if source.startswith(STAGE_BUCKET_SCHEME):
        prefix = source.removeprefix(STAGE_BUCKET_SCHEME).strip("/")
        return f"s3://{model_bucket_name}/{prefix}"
    return source


def loads_from_s3(version: ModelVersion) -> bool:
    return version.source.startswith((STAGE_BUCKET_SCHEME, "s3://"))


def speculative_config(version: ModelVersion, *, model_bucket_name: str) -> str | None:
    """The --speculative-config JSON, or None when speculative decoding is off."""
    speculative = version.engine.speculative
    if speculative is None:
        return None
    config: dict[str, object] = {
        "method": speculative.method.value,
        "num_speculative_tokens": speculative.num_speculative_tokens,
    }
    if speculative.method is SpeculativeMethod.NGRAM:
        config["prompt_lookup_max"] = speculative.prompt_lookup_max
    else:
        assert speculative.draft_model is not None  # the config model guarantees it
        config["model"] = resolve_source(speculative.draft_model, model_bucket_name=model_bucket_name)
        # The draft shares the target's GPUs; vLLM requires draft TP 1 or the target's TP.
        config["draft_tensor_parallel_size"] = 1
    return json.dumps(config, separators=(",", ":"), sort_keys=True)


def vllm_args(version: ModelVersion, *, model_bucket_name: str) -> list[str]:
    """Arguments after `vllm serve`; every engine option of the registry maps to one flag."""
    engine = version.engine
    args = [
        resolve_source(version.source, model_bucket_name=model_bucket_name),
        "--served-model-name",
        version.served_model_name,
        "--host",
        "0.0.0.0",  # noqa: S104 - the pod IP; the NetworkPolicy limits who connects
        "--port",
        str(VLLM_PORT),
        "--tensor-parallel-size",
        str(version.tensor_parallel_size),
        "--dtype",
        engine.dtype.value,
        "--max-model-len",
        str(engine.max_model_len),
        "--max-num-seqs",
        str(engine.max_num_seqs),
        "--gpu-memory-utilization",
        f"{engine.gpu_memory_utilization:g}",
    ]
    if engine.quantization is not Quantization.NONE:
        args += ["--quantization", QUANTIZATION_METHOD[engine.quantization.value]]
    args.append("--enable-prefix-caching" if engine.enable_prefix_caching else "--no-enable-prefix-caching")
    if loads_from_s3(version):
        args += ["--load-format", S3_LOAD_FORMAT]
    spec = speculative_config(version, model_bucket_name=model_bucket_name)
    if spec is not None:
        args += ["--speculative-config", spec]
    args += [
        # SIGTERM drains in-flight requests for this long instead of aborting them (0 = abort).
        "--shutdown-timeout",
        str(shutdown_timing(version.max_request_seconds).engine_shutdown_timeout),
        # One span per request to the in-cluster collector, which samples and exports to X-Ray.
        "--otlp-traces-endpoint",
        OTLP_TRACES_ENDPOINT,
    ]
    return args + list(engine.extra_args)


def command_line(version: ModelVersion, *, model_bucket_name: str) -> str:
    """The whole command as a shell would show it (for docs and the closing note)."""
    return shlex.join(VLLM_COMMAND + vllm_args(version, model_bucket_name=model_bucket_name))
