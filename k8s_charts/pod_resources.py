"""CPU, memory, /dev/shm and cache sizes of a vLLM pod, derived from the GPU nodes it may run on."""

from __future__ import annotations

import math
from dataclasses import dataclass

from config.catalog import GPU_INSTANCE_TYPES
from config.cluster import GpuNodeGroupConfig
from config.gpu_sharing import advertised_resources
from config.serving import ModelVersion
from k8s_charts.vllm_args import loads_from_s3

# Share of a node's CPU and memory a pod may request per GPU it takes; the rest is left for the
# kubelet reservation and the daemon sets (device plugin, DCGM exporter, CNI, collectors).
NODE_SHARE = 0.75
# NCCL and vLLM's multiprocessing executor exchange tensors through /dev/shm when TP > 1.
SHM_GIB_SINGLE_GPU = 2
SHM_GIB_PER_GPU_WITH_TP = 4
CACHE_GIB = 10
# Host memory the API server, engine core and each GPU worker need outside the streamer's buffer
# (tokenizer, CUDA context, pinned staging); an estimate with room to spare.
HOST_BASE_GIB = 4
HOST_PER_GPU_GIB = 2
GIB = 1024**3


def advertised_slots(group: GpuNodeGroupConfig) -> int:
    """GPU devices (whole, time slices or MIG devices) one node of the group offers pods."""
    return sum(advertised_resources(group).values())


@dataclass(frozen=True)
class PodResources:
    cpu: int
    memory_gib: int
    shm_gib: int
    cache_gib: int


def pod_resources(version: ModelVersion, node_groups: list[GpuNodeGroupConfig]) -> PodResources:
    """Requests that fit the smallest instance type of every node group the version may use."""
    smallest = [GPU_INSTANCE_TYPES[name] for group in node_groups for name in group.instance_types]
    share = min(version.gpus_per_replica / instance.gpus for instance in smallest)
    if version.gpu_share is not None:
        # A slice of a shared GPU gets the matching slice of the node: every slot of the node fits.
        slots = [advertised_slots(group) for group in node_groups]
        share = min(1 / slot for slot in slots)
    cpu = max(1, math.floor(min(instance.vcpus for instance in smallest) * share * NODE_SHARE))
    memory = max(4, math.floor(min(instance.memory_gib for instance in smallest) * share * NODE_SHARE))
    if version.gpus_per_replica > 1:
        shm = SHM_GIB_PER_GPU_WITH_TP * version.gpus_per_replica
    else:
        shm = SHM_GIB_SINGLE_GPU
    # Hub downloads land in the cache volume; S3 sources stream into GPU memory instead.
    cache = CACHE_GIB
    if not loads_from_s3(version) and version.weights_gib:
        cache += math.ceil(version.weights_gib * 1.2)
    return PodResources(cpu=cpu, memory_gib=memory, shm_gib=shm, cache_gib=cache)


def streamer_memory_limit_bytes(version: ModelVersion, sizes: PodResources) -> int:
    """RUNAI_STREAMER_MEMORY_LIMIT for each weight-loading process of the pod.

    The Run:ai streamer's CPU buffer is unlimited by default (-1); /dev/shm (a memory-backed
    emptyDir) counts against the same memory limit. Each tensor-parallel worker streams its own
    share, so the budget left after shm and the processes' own needs is split per GPU. Below 1 GiB
    per worker the streamer gets 0, its smallest mode (one tensor at a time).
    """
    budget_gib = (
        sizes.memory_gib - sizes.shm_gib - HOST_BASE_GIB - HOST_PER_GPU_GIB * version.gpus_per_replica
    )
    per_worker = budget_gib * GIB // version.gpus_per_replica
    return per_worker if per_worker >= GIB else 0
