"""Performance profiles: what one vLLM replica of a model version can do on a GPU type.

Every number is either cited (``Sourced``) or an estimate that says how it was derived. The replica
model, used by the simulator:

* engine step with n decoding sequences holding C context tokens and L prompt tokens (chunks):
  ``a + b * n + c * C + prefill_per_token * L`` seconds (a pure decode step has L = 0), each decoding
  sequence yielding ``tokens_per_step`` tokens (1, or more with speculative decoding);
* the per-step token budget (vLLM's max_num_batched_tokens, ``max_prefill_tokens``);
* KV cache capacity in tokens, ``max_num_seqs`` and ``max_model_len`` as admission limits.

Derivation (roofline, memory-bound decode; Pope et al., "Efficiently Scaling Transformer Inference",
MLSys 2023, section 2): a step reads all weights once (``a``), does 2 FLOPs per parameter per token
(``b``, ``prefill_per_token``) and reads each sequence's KV cache (``c``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields

import numpy as np

from config.catalog import GPU_INSTANCE_TYPES
from config.serving import ModelVersion, Quantization, SpeculativeMethod


class ProfileError(ValueError):
    """A model or GPU the planner cannot profile; the message says what to add or change."""


@dataclass(frozen=True)
class Sourced:
    value: float
    source: str


@dataclass(frozen=True)
class GpuSpec:
    memory_bandwidth_gb_s: Sourced
    fp16_dense_tflops: Sourced
    usable_memory_fraction: Sourced
    nvlink: bool


_A10_SHEET = "NVIDIA A10 datasheet (A10G: AWS's variant with the same 24 GB GDDR6 at 600 GB/s)"
# The A10G is not the A10 in tensor compute (baseten.co/blog/nvidia-a10-vs-a10g-for-ml-model-inference:
# "somewhat different specs -- most notably around tensor compute"). Neither AWS nor NVIDIA publishes an
# A10G datasheet that we could find; a measured FP16 GEMM on an A10G reaches 69.47 TFLOPS at 10240^3
# (github.com/zzc0721/torch-performance-test-data issue #126, 2026-01-20), well under the A10's 125, so
# 125 cannot be the A10G's figure. 69.47 is a measured lower bound used as the peak (an estimate).
_A10G_TENSOR = (
    "estimate: measured FP16 GEMM on an A10G, 69.47 TFLOPS (zzc0721/torch-performance-test-data#126), "
    "a lower bound on its peak; no AWS/NVIDIA A10G datasheet figure found; the A10's 125 does not apply"
)
_DRIVER_VISIBLE = Sourced(
    0.94, "estimate: nvidia-smi reports ~23,000 MiB of a 24 GiB A10G/L4; 6 % held by driver/ECC"
)
GPU_SPECS: dict[str, GpuSpec] = {
    "A10G": GpuSpec(Sourced(600, _A10_SHEET), Sourced(69.47, _A10G_TENSOR), _DRIVER_VISIBLE, False),
    "L4": GpuSpec(
        Sourced(300, "NVIDIA L4 datasheet"),
        Sourced(121, "NVIDIA L4 datasheet, FP16 tensor dense"),
        _DRIVER_VISIBLE,
        False,
    ),
    "L40S": GpuSpec(
        Sourced(864, "NVIDIA L40S datasheet"),
        Sourced(362, "NVIDIA L40S datasheet, FP16 tensor dense"),
        _DRIVER_VISIBLE,
        False,
    ),
    "A100-40GB": GpuSpec(
        Sourced(1555, "NVIDIA A100 datasheet (40 GB SXM)"),
        Sourced(312, "NVIDIA A100 datasheet, dense"),
        _DRIVER_VISIBLE,
        True,
    ),
    "A100-80GB": GpuSpec(
        Sourced(2039, "NVIDIA A100 datasheet (80 GB SXM)"),
        Sourced(312, "NVIDIA A100 datasheet, dense"),
        _DRIVER_VISIBLE,
        True,
    ),
    "H100": GpuSpec(
        Sourced(3350, "NVIDIA H100 datasheet (SXM)"),
        Sourced(989, "NVIDIA H100 datasheet (SXM), dense"),
        _DRIVER_VISIBLE,
        True,
    ),
}


@dataclass(frozen=True)
class Architecture:
    params_billion: float
    layers: int
    kv_heads: int
    head_dim: int
    source: str


# Model shapes from each model's config.json on Hugging Face (num_hidden_layers, num_key_value_heads,
# head_dim = hidden_size / num_attention_heads) and the parameter counts on the model cards.
ARCHITECTURES: dict[str, Architecture] = {
    "llama-3.1-8b": Architecture(8.03, 32, 8, 128, "meta-llama/Llama-3.1-8B-Instruct config.json"),
    "llama-3.1-70b": Architecture(70.6, 80, 8, 128, "meta-llama/Llama-3.1-70B-Instruct config.json"),
    "llama-3.2-1b": Architecture(1.24, 16, 8, 64, "meta-llama/Llama-3.2-1B-Instruct config.json"),
    "llama-3.2-3b": Architecture(3.21, 28, 8, 128, "meta-llama/Llama-3.2-3B-Instruct config.json"),
    "mistral-7b": Architecture(7.24, 32, 8, 128, "mistralai/Mistral-7B-Instruct-v0.3 config.json"),
    "qwen2.5-7b": Architecture(7.62, 28, 4, 128, "Qwen/Qwen2.5-7B-Instruct config.json"),
}

# Efficiencies: estimates, the same for every GPU family without a calibrated entry (CALIBRATED_EFFICIENCY,
# below, replaces bandwidth and step overhead for the families with published measurements). Achieved
# HBM bandwidth in decode is typically 70-80 % of peak (memory-bound kernels);
# prefill reaches about half of dense tensor peak at 1-2 k-token batches (MFU figures in Pope et al.
# and in vLLM/SGLang benchmark write-ups); AWQ/GPTQ kernels dequantise in the GEMM and run prefill
# at roughly 0.7x the FP16 rate (vLLM docs: "AWQ ... under-optimized", lower throughput at batch).
BANDWIDTH_EFFICIENCY = Sourced(0.75, "estimate: 70-80 % of peak HBM bandwidth in decode kernels")
PREFILL_MFU = Sourced(0.5, "estimate: ~50 % of dense FP16 tensor peak in prefill")
QUANTISED_COMPUTE_FACTOR = Sourced(0.7, "estimate: AWQ/GPTQ GEMMs ~0.7x FP16 throughput")
STEP_OVERHEAD_SECONDS = Sourced(0.003, "estimate: scheduler, sampling and launch overhead per step")

# Two all-reduces per layer per step under tensor parallelism; PCIe-only instances (g5/g6/g6e) pay
# more than NVLink ones (p4/p5). Per-all-reduce latencies are estimates from NCCL small-message times.
ALL_REDUCE_SECONDS_PCIE = Sourced(25e-6, "estimate: NCCL small all-reduce over PCIe")
ALL_REDUCE_SECONDS_NVLINK = Sourced(8e-6, "estimate: NCCL small all-reduce over NVLink")
ACTIVATION_RESERVE_GIB = Sourced(1.5, "estimate: vLLM activation/CUDA-graph memory per GPU")
BYTES_PER_PARAM = {
    Quantization.NONE: 2.0,
    Quantization.FP8: 1.0,
    Quantization.AWQ: 0.5625,  # 4-bit weights + group-128 scales/zeros
    Quantization.GPTQ: 0.5625,
}
# Speculative decoding: expected tokens per step (1 - alpha^(k+1)) / (1 - alpha) for k drafted tokens
# and acceptance rate alpha (Leviathan et al., "Fast Inference from Transformers via Speculative
# Decoding", ICML 2023, eq. 1). Acceptance rates are estimates for chat traffic.
SPECULATIVE_ACCEPTANCE = {
    SpeculativeMethod.DRAFT_MODEL: Sourced(0.6, "estimate: small same-family draft on chat"),
    SpeculativeMethod.NGRAM: Sourced(0.3, "estimate: prompt-lookup acceptance on chat (low reuse)"),
}
KV_BYTES_PER_VALUE = 2  # fp16/bf16 KV cache (vLLM default kv_cache_dtype=auto)


@dataclass(frozen=True)
class Efficiency:
    """How much of a GPU's datasheet peak a vLLM replica reaches, and its fixed cost per engine step."""

    bandwidth: float  # fraction of peak memory bandwidth in decode
    prefill_mfu: float  # fraction of dense FP16 tensor peak in prefill
    step_overhead_seconds: float  # scheduler, sampling and launch, per engine step
    source: str


ESTIMATED_EFFICIENCY = Efficiency(
    BANDWIDTH_EFFICIENCY.value,
    PREFILL_MFU.value,
    STEP_OVERHEAD_SECONDS.value,
    "estimates (no published measurement fitted for this GPU family)",
)
# Fitted by planner.calibration (least squares of the V1 replica's replay of each benchmark against its
# published figure, planner/vllm_measurements.json); tests/unit/planner/test_planner_calibration.py
# refits and fails if these constants and the data file disagree. Keyed by GPU family (the GPU model up
# to the first "-": A100-40GB and A100-80GB share one). Families not listed keep ESTIMATED_EFFICIENCY.
_FITTED = Efficiency(
    0.827, PREFILL_MFU.value, 0.00064, "fitted (planner.calibration) to vLLM measurements on A100, H100"
)
CALIBRATED_EFFICIENCY: dict[str, Efficiency] = {"A100": _FITTED, "H100": _FITTED}


def efficiency_for(gpu_model: str) -> Efficiency:
    return CALIBRATED_EFFICIENCY.get(gpu_model.split("-")[0], ESTIMATED_EFFICIENCY)


@dataclass(frozen=True)
class ReplicaProfile:
    """Coefficients of one replica (seconds, tokens); see the module docstring for the model."""

    step_seconds: float  # a
    per_sequence_seconds: float  # b
    per_context_token_seconds: float  # c
    prefill_per_token_seconds: float
    tokens_per_step: float
    kv_capacity_tokens: int
    max_num_seqs: int
    max_model_len: int
    # Token budget of one engine step (vLLM's max_num_batched_tokens): decode tokens first, then prompt
    # chunks (chunked prefill).
    max_prefill_tokens: int
    description: str

    def __post_init__(self) -> None:
        problems = [
            name
            for name in ("step_seconds", "prefill_per_token_seconds", "tokens_per_step")
            if not getattr(self, name) > 0
        ]
        problems += [
            name
            for name in ("per_sequence_seconds", "per_context_token_seconds")
            if not getattr(self, name) >= 0
        ]
        problems += [
            name
            for name in ("kv_capacity_tokens", "max_num_seqs", "max_model_len", "max_prefill_tokens")
            if not getattr(self, name) >= 1
        ]
        if problems:
            raise ProfileError(f"profile {self.description!r}: {', '.join(problems)} out of range")

    def __reduce__(self) -> tuple[type[ReplicaProfile], tuple[object, ...]]:
        # Rebuilt through __init__ when pickled (the process pool): works compiled (mypyc) too.
        return (ReplicaProfile, tuple(getattr(self, field.name) for field in fields(self)))

    # The one time model: the simulator, the oracle's sizing and the reports all call these.

    def decode_step_seconds(self, batch: int, context_tokens: float) -> float:
        return (
            self.step_seconds
            + self.per_sequence_seconds * batch
            + self.per_context_token_seconds * context_tokens
        )

    def mixed_step_seconds(self, batch: int, context_tokens: float, prompt_tokens: int) -> float:
        """One engine step: ``batch`` decoding sequences plus ``prompt_tokens`` of prompt chunks."""
        return (
            self.decode_step_seconds(batch, context_tokens) + self.prefill_per_token_seconds * prompt_tokens
        )

    def decode_run_seconds(self, steps: int, batch: int, context_tokens: float) -> float:
        """``steps`` decode steps of a fixed batch whose context grows by batch x tokens_per_step a step."""
        growth = self.per_context_token_seconds * batch * self.tokens_per_step
        return steps * self.decode_step_seconds(batch, context_tokens) + growth * steps * (steps - 1) / 2

    def decode_steps_within(self, elapsed: float, batch: int, context_tokens: float) -> int:
        """Whole decode steps of such a run completed after ``elapsed`` seconds (the inverse)."""
        growth = self.per_context_token_seconds * batch * self.tokens_per_step / 2
        linear = self.decode_step_seconds(batch, context_tokens) - growth
        if growth <= 0:
            return int(elapsed / linear)
        return int((-linear + math.sqrt(linear * linear + 4 * growth * elapsed)) / (2 * growth))

    def full_batch_seconds(self, prompt: np.ndarray, output: np.ndarray) -> np.ndarray:
        """Replica-seconds each request costs at the replica's full operating batch (capacity sizing).

        The batch is what the KV cache holds of requests of the mean size (at most max_num_seqs); a
        request costs its prefill plus its decode steps' share of that batch's step time.
        """
        mean_tokens = float(np.mean(prompt + output)) if prompt.size else 1.0
        batch = max(1, min(self.max_num_seqs, int(self.kv_capacity_tokens / mean_tokens)))
        # The same operations as prompt + output / 2 and prefill * prompt + max(0, ceil((output - 1) /
        # tokens_per_step)) * step / batch, done in place: two float arrays at a time, not six (a
        # 27M-request week's sizing in the planning process).
        half = np.divide(output, 2, dtype=np.float64)
        mean_context = batch * float(np.mean(np.add(prompt, half, out=half))) if prompt.size else 0.0
        del half
        step = self.decode_step_seconds(batch, mean_context)
        decode = np.subtract(output, 1, dtype=np.float64)  # exact: token counts are far below 2**53
        np.divide(decode, self.tokens_per_step, out=decode)
        np.ceil(decode, out=decode)
        np.maximum(0, decode, out=decode)
        np.multiply(decode, step, out=decode)
        np.divide(decode, batch, out=decode)
        seconds: np.ndarray = np.multiply(self.prefill_per_token_seconds, prompt, dtype=np.float64)
        np.add(seconds, decode, out=seconds)
        return seconds

    def decode_steps(self, output_tokens: int) -> int:
        """Steps after the prefill (which yields the first token) to generate the rest."""
        return math.ceil((output_tokens - 1) / self.tokens_per_step) if output_tokens > 1 else 0


def _canonical(text: str) -> str:
    return re.sub(r"[._]", "-", text.lower())


def _match(text: str) -> tuple[str, Architecture] | None:
    canonical = _canonical(text)
    for name, architecture in ARCHITECTURES.items():
        if _canonical(name) in canonical:
            return name, architecture
    return None


def architecture_for(version: ModelVersion) -> tuple[str, Architecture]:
    """Match the version's served name or source against the known architectures."""
    found = _match(f"{version.served_model_name} {version.source}")
    if found is not None:
        return found
    raise ProfileError(
        f"model version {version.name!r} ({version.served_model_name}, {version.source}) matches no known "
        f"architecture; known: {', '.join(ARCHITECTURES)}. Add it to planner.profiles.ARCHITECTURES with "
        "its config.json values"
    )


def _draft_architecture(version: ModelVersion) -> Architecture | None:
    speculative = version.engine.speculative
    if speculative is None or speculative.draft_model is None:
        return None
    found = _match(speculative.draft_model)
    if found is not None:
        return found[1]
    raise ProfileError(f"draft model {speculative.draft_model!r} matches no known architecture")


def default_max_num_batched_tokens(gpu_model: str, gpu_memory_gib: float) -> int:
    """vLLM's per-step token budget when ``--max-num-batched-tokens`` is not set (the OpenAI server).

    EngineArgs.get_batch_defaults in vllm/engine/arg_utils.py of the pinned release (v0.33.0, the
    wheel whose sha256 config/vllm_facts/v0.33.0.json records): 16384 on GPUs with at least 160 GiB,
    8192 on GPUs with at least 70 GiB that are not A100s, 2048 otherwise. Chunked prefill is on by
    default (SchedulerConfig.enable_chunked_prefill = True), so the budget is not raised to
    max_model_len. Memory is per GPU (current_platform.get_device_total_memory).
    """
    if gpu_memory_gib >= 160:
        return 16384
    if gpu_memory_gib >= 70 and "a100" not in gpu_model.lower():
        return 8192
    return 2048


def replica_profile(
    version: ModelVersion,
    instance_type: str,
    max_prefill_tokens: int | None = None,
    efficiency: Efficiency | None = None,
) -> ReplicaProfile:
    """Derive the replica coefficients for a model version on one instance type.

    ``efficiency`` defaults to the GPU family's (efficiency_for); planner.calibration passes trial values.
    """
    instance = GPU_INSTANCE_TYPES.get(instance_type)
    if instance is None:
        raise ProfileError(f"instance type {instance_type!r} is not in config.catalog.GPU_INSTANCE_TYPES")
    gpu = GPU_SPECS.get(instance.gpu_model)
    if gpu is None:
        raise ProfileError(f"GPU {instance.gpu_model!r} has no entry in planner.profiles.GPU_SPECS")
    name, arch = architecture_for(version)
    engine = version.engine
    tp = version.gpus_per_replica
    eff = efficiency or efficiency_for(instance.gpu_model)
    bandwidth = gpu.memory_bandwidth_gb_s.value * 1e9 * eff.bandwidth * tp
    compute = gpu.fp16_dense_tflops.value * 1e12 * eff.prefill_mfu * tp
    if engine.quantization in (Quantization.AWQ, Quantization.GPTQ):
        compute *= QUANTISED_COMPUTE_FACTOR.value
    weight_bytes = (
        version.weights_gib * 2**30
        if version.weights_gib
        else arch.params_billion * 1e9 * BYTES_PER_PARAM[engine.quantization]
    )
    flops_per_token = 2 * arch.params_billion * 1e9
    all_reduce = ALL_REDUCE_SECONDS_NVLINK if gpu.nvlink else ALL_REDUCE_SECONDS_PCIE
    tp_seconds = 2 * arch.layers * all_reduce.value if tp > 1 else 0.0
    kv_bytes_per_token = 2 * arch.layers * arch.kv_heads * arch.head_dim * KV_BYTES_PER_VALUE

    step = weight_bytes / bandwidth + eff.step_overhead_seconds + tp_seconds
    per_sequence = flops_per_token / compute
    tokens_per_step = 1.0
    speculative = engine.speculative
    draft = _draft_architecture(version)
    if speculative is not None:
        # Each step drafts k tokens (k draft forward passes) and verifies k+1 with the target model.
        alpha = SPECULATIVE_ACCEPTANCE[speculative.method].value
        k = speculative.num_speculative_tokens
        tokens_per_step = (1 - alpha ** (k + 1)) / (1 - alpha)
        if draft is not None:
            draft_bytes = draft.params_billion * 1e9 * BYTES_PER_PARAM[Quantization.NONE]
            step += k * (draft_bytes / bandwidth + eff.step_overhead_seconds)
        per_sequence *= k + 1
    usable_gib = (
        instance.gpu_memory_gib * gpu.usable_memory_fraction.value * engine.gpu_memory_utilization * tp
    )
    draft_gib = (draft.params_billion * 1e9 * 2 / 2**30) if draft else 0.0
    kv_gib = usable_gib - weight_bytes / 2**30 - draft_gib - ACTIVATION_RESERVE_GIB.value * tp
    if kv_gib <= 0:
        raise ProfileError(
            f"model version {version.name!r} ({name}, {weight_bytes / 2**30:.1f} GiB) leaves no KV cache on "
            f"{tp} x {instance.gpu_model} at gpu_memory_utilization {engine.gpu_memory_utilization}"
        )
    kv_tokens = int(kv_gib * 2**30 / kv_bytes_per_token)
    return ReplicaProfile(
        step_seconds=step,
        per_sequence_seconds=per_sequence,
        per_context_token_seconds=kv_bytes_per_token / bandwidth,
        prefill_per_token_seconds=flops_per_token / compute,
        tokens_per_step=tokens_per_step,
        kv_capacity_tokens=kv_tokens,
        max_num_seqs=engine.max_num_seqs,
        max_model_len=engine.max_model_len,
        max_prefill_tokens=max_prefill_tokens
        or default_max_num_batched_tokens(instance.gpu_model, instance.gpu_memory_gib),
        description=f"{name} {engine.quantization.value} TP{tp} on {instance_type} ({instance.gpu_model})",
    )
