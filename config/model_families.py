"""Facts about the model families the registry serves, and the GPU-memory estimates built on them.

Each family's numbers come from its Hugging Face `config.json` (max_position_embeddings,
num_attention_heads, num_key_value_heads, num_hidden_layers, hidden_size) and model card (parameter
count). A model source is matched to a family by name (`bucket://llama-3-1-8b-instruct-awq`,
`meta-llama/Llama-3.1-8B-Instruct`); sources that match no family skip the family-based rules, and
`weights_gib` alone drives the memory check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelFamily:
    key: str  # normalised name a source must contain, e.g. "llama-3-1-8b"
    parameters_billion: float
    context_tokens: int
    attention_heads: int
    kv_heads: int
    layers: int
    hidden_size: int
    source: str

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.attention_heads

    def kv_cache_bytes_per_token(self, bytes_per_value: float) -> float:
        """Keys and values of every layer for one token (all shards together)."""
        return 2 * self.layers * self.kv_heads * self.head_dim * bytes_per_value


MODEL_FAMILIES = (
    ModelFamily(
        "llama-3-1-8b", 8.03, 131072, 32, 8, 32, 4096, "huggingface.co/meta-llama/Llama-3.1-8B-Instruct"
    ),
    ModelFamily(
        "llama-3-1-70b", 70.6, 131072, 64, 8, 80, 8192, "huggingface.co/meta-llama/Llama-3.1-70B-Instruct"
    ),
    ModelFamily(
        "llama-3-2-1b", 1.24, 131072, 32, 8, 16, 2048, "huggingface.co/meta-llama/Llama-3.2-1B-Instruct"
    ),
)

BYTES_PER_PARAMETER = {"none": 2.0, "fp8": 1.0, "awq": 0.5, "gptq": 0.5}
"""Weight bytes per parameter by `engine.quantization` (16-bit unquantised; AWQ/GPTQ are 4-bit).

A lower bound: quantised checkpoints also keep scales, embeddings and the LM head in 16 bits.
"""
KV_CACHE_BYTES_PER_VALUE = 2.0
"""vLLM's default kv-cache dtype follows the model dtype: 16-bit for every dtype the config allows."""
ACTIVATION_HEADROOM = 1.2
"""vLLM needs room beyond the weights for activations, CUDA graphs and the sampler."""
GIB = 1024**3


def _normalise(source: str) -> str:
    name = source.rsplit("://", 1)[-1].lower()
    return re.sub(r"[^a-z0-9]+", "-", name)


def family_of(source: str) -> ModelFamily | None:
    """The family a model source names, or None. The longest matching key wins (3-1-70b over 3-1-7)."""
    name = _normalise(source)
    matches = [family for family in MODEL_FAMILIES if re.search(rf"(^|-){family.key}(-|$)", name)]
    return max(matches, key=lambda family: len(family.key), default=None)


def weights_lower_bound_gib(family: ModelFamily, quantization: str) -> float:
    return family.parameters_billion * 1e9 * BYTES_PER_PARAMETER[quantization] / GIB


def kv_cache_gib(family: ModelFamily, tokens: int) -> float:
    """KV cache for `tokens` tokens of one sequence (vLLM refuses to start without room for one)."""
    return family.kv_cache_bytes_per_token(KV_CACHE_BYTES_PER_VALUE) * tokens / GIB
