"""A replica on part of a GPU: a time slice or a MIG device (config/gpu_sharing.py, docs/gpu-sharing.md).

* ``time-slicing:N``: N pods per GPU. Under load each context gets 1/N of the GPU's time, whatever
  its memory fraction, times the interference factor TIME_SLICING_THROUGHPUT below; memory is the
  version's ``gpu_memory_utilization`` of the whole GPU (the config keeps it within its fraction).
* ``mig:PROFILE``: the profile's compute slices of the GPU's 7 (``3g.40gb`` = 3/7 of the SMs) and its
  memory (40 GB, as the profile names it), with ``gpu_memory_utilization`` applying within the device;
  no interference (hardware partitioning); devices per GPU from config/mig_profiles.py.

A replica's time model on its slice is the whole-GPU profile's with every time divided by the slice's
capacity (compute share x interference): contention is assumed all the time, so latency and
throughput are both conservative when the neighbours are idle.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from config.catalog import GPU_INSTANCE_TYPES
from config.cluster import GpuNodeGroupConfig
from config.gpu_sharing import SharingMode
from config.mig_profiles import MIG_PROFILES, PROFILE, mig_profile_memory_gb
from config.serving import ModelVersion
from planner.profiles import ReplicaProfile, replica_profile

# Time-slicing's throughput against hardware partitioning under load: NVIDIA's benchmark of a voice
# pipeline (ASR and TTS models sharing an A100 beside an LLM, 50 concurrent users) measured about
# 0.76 requests/s per GPU with time-slicing against about 1.00 with MIG ("Maximize AI Infrastructure
# Throughput by Consolidating Underutilized GPU Workloads", NVIDIA Technical Blog, 2026-03-25). One
# published measurement, not of two vLLM replicas: an estimate, stated wherever it is used.
TIME_SLICING_THROUGHPUT = 0.76
MIG_COMPUTE_SLICES = 7  # A100/H100/H200: a GPU has 7 compute slices ("1g" = one; MIG user guide)


class SharingError(ValueError):
    """A --gpu-sharing scenario that cannot be planned."""


@dataclass(frozen=True)
class Slice:
    """What one replica gets of a GPU."""

    label: str
    compute_share: float
    memory_gib: float  # the slice's memory (vLLM's gpu_memory_utilization applies within it)
    interference: float  # throughput factor under contention (1: none)
    per_gpu: int
    time_sliced: bool  # time slice (memory by gpu_memory_utilization of the GPU) or MIG device

    @property
    def capacity(self) -> float:
        """A slice's throughput in whole-GPU replicas."""
        return self.compute_share * self.interference


def parse_slice(spec: str, gpu_model: str, gpu_memory_gib: float) -> Slice:
    """``time-slicing:N`` (2..16) or ``mig:PROFILE`` on a GPU model."""
    mode, _, argument = spec.partition(":")
    if mode == "time-slicing":
        try:
            replicas = int(argument)
        except ValueError:
            replicas = 0
        if not 2 <= replicas <= 16:
            raise SharingError(
                f"--gpu-sharing {spec!r}: time-slicing needs 2 to 16 pods per GPU, e.g. time-slicing:2"
            )
        return Slice(
            f"time-slicing x{replicas} (interference {TIME_SLICING_THROUGHPUT:g}, estimate)",
            1 / replicas,
            gpu_memory_gib / replicas,
            TIME_SLICING_THROUGHPUT,
            replicas,
            True,
        )
    if mode == "mig":
        profiles = MIG_PROFILES.get(gpu_model)
        if profiles is None:
            raise SharingError(
                f"--gpu-sharing {spec!r}: {gpu_model} GPUs have no MIG; allowed on "
                f"{', '.join(sorted(MIG_PROFILES))} (p4d, p4de, p5), or time-slicing:N"
            )
        if argument not in profiles:
            raise SharingError(
                f"--gpu-sharing {spec!r}: {gpu_model} has no MIG profile {argument!r}; allowed: "
                f"{', '.join(profiles)}"
            )
        match = PROFILE.match(argument)
        assert match is not None  # every key of MIG_PROFILES is a profile name
        return Slice(
            f"MIG {argument} (no interference)",
            int(match["slices"]) / MIG_COMPUTE_SLICES,
            float(mig_profile_memory_gb(argument)),
            1.0,
            profiles[argument],
            False,
        )
    raise SharingError(f"--gpu-sharing {spec!r}: allowed: time-slicing:N (2..16) or mig:PROFILE")


def configured_slice(group: GpuNodeGroupConfig, version: ModelVersion) -> Slice | None:
    """The slice a version's replica gets on a shared node group of the stage (None: whole GPUs)."""
    sharing = group.sharing
    if version.gpu_share is None or sharing.mode is SharingMode.NONE:
        return None
    instance = GPU_INSTANCE_TYPES[group.instance_types[0]]
    spec = (
        f"time-slicing:{sharing.replicas}"
        if sharing.mode is SharingMode.TIME_SLICING
        else f"mig:{sharing.mig_profile}"
    )
    return parse_slice(spec, instance.gpu_model, instance.gpu_memory_gib)


def slice_profile(
    version: ModelVersion, instance_type: str, slice_: Slice, *, memory_utilisation: float | None = None
) -> ReplicaProfile:
    """The replica profile on a slice: the slice's memory for weights and KV cache, times / capacity.

    ``memory_utilisation`` overrides the version's ``gpu_memory_utilization`` for time slices (the
    share of the whole GPU's memory); on a MIG device the version's setting applies to the device."""
    instance = GPU_INSTANCE_TYPES[instance_type]
    utilisation = version.engine.gpu_memory_utilization
    if slice_.time_sliced:
        utilisation = memory_utilisation if memory_utilisation is not None else utilisation
    else:
        utilisation *= slice_.memory_gib / instance.gpu_memory_gib
    engine = version.engine.model_copy(update={"gpu_memory_utilization": utilisation})
    profile = replica_profile(version.model_copy(update={"engine": engine}), instance_type)
    capacity = slice_.capacity
    return replace(
        profile,
        step_seconds=profile.step_seconds / capacity,
        per_sequence_seconds=profile.per_sequence_seconds / capacity,
        per_context_token_seconds=profile.per_context_token_seconds / capacity,
        prefill_per_token_seconds=profile.prefill_per_token_seconds / capacity,
        description=f"{profile.description}, on a {slice_.label} slice",
    )
