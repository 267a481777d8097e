"""Will a model version start on its GPUs, and can its node groups ever hold its replicas?

Rules checked when the stage loads (vLLM and the scheduler would otherwise find out at run time):
the weights (given, or a lower bound from the model family) with headroom and one full-length
sequence of KV cache fit the replica's GPUs; `max_model_len` is within the model's context; the
attention heads divide by the tensor-parallel size; `min_replicas` fit the node groups at their
maximum size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from config.model_families import (
    ACTIVATION_HEADROOM,
    BYTES_PER_PARAMETER,
    family_of,
    kv_cache_gib,
    weights_lower_bound_gib,
)

if TYPE_CHECKING:
    from config.cluster import GpuNodeGroupConfig
    from config.serving import ModelConfig, ModelVersion


def model_fit_problems(where: str, version: ModelVersion, group: GpuNodeGroupConfig) -> list[str]:
    """Why `version` cannot start on one node of `group` (empty when it can)."""
    problems: list[str] = []
    family = family_of(version.source)
    engine = version.engine
    quantization = engine.quantization.value
    if family is not None:
        if engine.max_model_len > family.context_tokens:
            problems.append(
                f"{where}.engine.max_model_len {engine.max_model_len} exceeds the "
                f"{family.context_tokens}-token "
                f"context of {family.key} ({family.source}); allowed: at most {family.context_tokens} "
                "(vLLM refuses a longer max_model_len at start-up)"
            )
        if family.attention_heads % version.gpus_per_replica or family.kv_heads % version.gpus_per_replica:
            problems.append(
                f"{where}.gpus_per_replica {version.gpus_per_replica}: {family.key} has "
                f"{family.attention_heads} attention heads and {family.kv_heads} KV heads, which vLLM must "
                "split evenly across the tensor-parallel GPUs; allowed: a size dividing both"
            )
    usable = version.gpus_per_replica * group.gpu_memory_gib * engine.gpu_memory_utilization
    where_gpus = (
        f"{version.gpus_per_replica} x {group.instance.gpu_model} ({group.gpu_memory_gib} GiB) at "
        f"gpu_memory_utilization {engine.gpu_memory_utilization} gives {usable:.1f} GiB on node group "
        f"{group.name!r}"
    )
    fix = "use more GPUs per replica, quantization, a shorter max_model_len or a larger GPU"
    floor = weights_lower_bound_gib(family, quantization) if family else None
    # The larger of the stated size and the family's lower bound: a typo in weights_gib cannot hide a misfit.
    known = [size for size in (version.weights_gib, floor) if size is not None]
    if not known:
        return problems
    weights = max(known)
    needed = weights * ACTIVATION_HEADROOM
    kv = kv_cache_gib(family, engine.max_model_len) if family else 0.0
    if needed + kv > usable:
        told = (
            f"{where}.weights_gib {version.weights_gib:g}"
            if version.weights_gib is not None and version.weights_gib >= weights
            else f"{where}: {family.key if family else 'the model'} at quantization {quantization} "
            f"({weights:.1f} GiB of weights at least: {BYTES_PER_PARAMETER[quantization]:g} bytes x "
            f"{family.parameters_billion if family else '?'}B parameters)"
        )
        kv_part = (
            f" plus {kv:.1f} GiB of KV cache for one {engine.max_model_len}-token sequence" if kv else ""
        )
        problems.append(
            f"{told} needs about {needed:.1f} GiB with headroom{kv_part}, but {where_gpus}; {fix}"
        )
    return problems


def schedulable_replicas(version: ModelVersion, groups: list[GpuNodeGroupConfig]) -> int:
    """Replicas of `version` its node groups hold at their maximum size (a replica never spans nodes)."""
    return sum(group.max_size * (group.gpus_per_node // version.gpus_per_replica) for group in groups)


def min_replicas_problem(
    model: ModelConfig, version: ModelVersion, groups: list[GpuNodeGroupConfig]
) -> str | None:
    room = schedulable_replicas(version, groups)
    wanted = model.autoscaling.min_replicas
    if wanted <= room:
        return None
    sizes = ", ".join(
        f"{group.name} max_size {group.max_size} x {group.gpus_per_node} GPUs" for group in groups
    )
    return (
        f"models[{model.id}].autoscaling.min_replicas {wanted} x {version.gpus_per_replica} GPUs for version "
        f"{version.name!r} can never be scheduled: its node groups ({sizes}) hold at most {room} replicas; "
        f"allowed: min_replicas <= {room}, or raise the groups' max_size"
    )
