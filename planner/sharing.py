"""What GPU sharing between models saves (``--gpu-sharing``): whole GPUs per model vs shared GPUs.

An analytic scenario over the trace, window by window (the oracle's sizing, planner.policies), not a
replay: each model version's work per window, in whole-GPU replicas at ``utilisation``, is carried

* **whole**: by ``ceil(work)`` replicas (at least one: the model stays up) of ``gpus_per_replica``
  GPUs each, on nodes of its own (node groups are not shared between models today);
* **shared**: by slices of a GPU, each worth ``compute share x interference`` of a whole-GPU replica:
  ``ceil(work / that)`` slices (at least one); the slices of all co-located versions on one instance
  type are packed onto GPUs (``slices per GPU``), and the GPUs onto nodes.

Slices: planner.gpu_slices (time-slicing:N at 1/N of the time x the interference factor, with
``gpu_memory_utilization`` 1/N here, the largest fraction the config accepts for N; mig:PROFILE at the
profile's compute slices and memory, no interference). A stage whose config already shares GPUs is
simulated on its slices by every policy (planner.policies); this scenario is for what-ifs.

A version shares only with ``gpus_per_replica`` 1 (no tensor parallelism across shared GPUs, as the
config refuses) and when its weights leave a slice room for at least one ``max_model_len`` request
(planner.profiles on the slice's memory); otherwise it keeps whole GPUs and the report says why.
Left out: the smaller KV cache of a slice lowers the batch a replica can run (its throughput is taken
as the compute share of a whole-GPU replica's), and time-slicing's latency cost (each step waits for
the neighbours' slices) is in the throughput factor only, not in TTFT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from config.catalog import GPU_INSTANCE_TYPES
from config.serving import ModelConfig, ModelVersion
from config.stage import StageConfig
from planner.gpu_slices import Slice, parse_slice, slice_profile
from planner.policies import group_specs, service_seconds
from planner.prices import hourly_price
from planner.profiles import ProfileError, replica_profile
from planner.trace import Trace, thin


@dataclass(frozen=True)
class Demand:
    """One model version's work per window on its preferred instance type."""

    name: str
    instance_type: str
    gpus_per_replica: int
    gpus_per_node: int
    hourly_price: float
    work: np.ndarray  # whole-GPU replicas needed per window at the planning utilisation
    shareable: bool
    reason: str  # why not shareable, or the slice's KV cache


@dataclass(frozen=True)
class Fleet:
    label: str
    nodes: np.ndarray  # per window
    gpus_per_node: int
    hourly_price: float
    window_seconds: float

    @property
    def peak_nodes(self) -> int:
        return int(self.nodes.max()) if self.nodes.size else 0

    @property
    def gpu_hours(self) -> float:
        return float(self.nodes.sum()) * self.gpus_per_node * self.window_seconds / 3600

    @property
    def dollars(self) -> float:
        return float(self.nodes.sum()) * self.hourly_price * self.window_seconds / 3600


def whole_gpus(demands: list[Demand], window_seconds: float) -> Fleet:
    """Each version on whole GPUs and nodes of its own (what the stage does today)."""
    first = demands[0]
    nodes = sum((_whole_nodes(demand) for demand in demands), start=np.zeros(first.work.size, dtype=np.int64))
    return Fleet("whole GPUs (today)", nodes, first.gpus_per_node, first.hourly_price, window_seconds)


def shared_gpus(demands: list[Demand], slice_: Slice, window_seconds: float) -> Fleet:
    """Shareable versions' slices packed onto common GPUs and nodes; the others on whole GPUs."""
    first = demands[0]
    slices = np.zeros(first.work.size, dtype=np.int64)
    nodes = np.zeros(first.work.size, dtype=np.int64)
    for demand in demands:
        if demand.shareable:
            slices += np.maximum(np.ceil(demand.work / slice_.capacity - 1e-9), 1).astype(np.int64)
        else:
            nodes += _whole_nodes(demand)
    gpus = -(-slices // slice_.per_gpu)
    nodes += -(-gpus // first.gpus_per_node)
    return Fleet(slice_.label, nodes, first.gpus_per_node, first.hourly_price, window_seconds)


def _whole_nodes(demand: Demand) -> np.ndarray:
    replicas = np.maximum(np.ceil(demand.work - 1e-9), 1).astype(np.int64)
    gpus = replicas * demand.gpus_per_replica
    nodes: np.ndarray = -(-gpus // demand.gpus_per_node)
    return nodes


def demand_for(
    stage: StageConfig,
    model: ModelConfig,
    version: ModelVersion,
    trace: Trace,
    spec: str,
    *,
    utilisation: float,
    window_seconds: float,
    seed: int,
) -> tuple[Demand, Slice]:
    group = group_specs(stage, version)[0]
    instance = GPU_INSTANCE_TYPES[group.instance_type]
    slice_ = parse_slice(spec, instance.gpu_model, instance.gpu_memory_gib)
    profile = replica_profile(version, group.instance_type)  # whole GPU: the work is in whole-GPU replicas
    version_trace = thin(trace, version.weight / 100, seed + 7919)
    windows = max(1, math.ceil(version_trace.duration_seconds / window_seconds))
    index = np.minimum((version_trace.arrival // window_seconds).astype(np.int64), windows - 1)
    seconds = service_seconds(profile, version_trace.prompt_tokens, version_trace.output_tokens)
    work = np.bincount(index, weights=seconds, minlength=windows) / (window_seconds * utilisation)
    shareable, reason = _fits(version, group.instance_type, instance.gpu_memory_gib, slice_)
    demand = Demand(
        name=f"{model.id}/{version.name}",
        instance_type=group.instance_type,
        gpus_per_replica=version.gpus_per_replica,
        gpus_per_node=group.gpus_per_node,
        hourly_price=hourly_price(group.instance_type, spot=False),
        work=work,
        shareable=shareable,
        reason=reason,
    )
    return demand, slice_


def _fits(
    version: ModelVersion, instance_type: str, gpu_memory_gib: float, slice_: Slice
) -> tuple[bool, str]:
    if version.gpus_per_replica != 1:
        return False, f"gpus_per_replica {version.gpus_per_replica}: no tensor parallelism across shared GPUs"
    # vLLM's gpu_memory_utilization is a share of the memory it sees: the whole GPU under time-slicing
    # (so at most the slice's share), the MIG device under MIG (the engine's own setting within it).
    # Under time-slicing the version would get the largest memory fraction the config accepts (1/N).
    utilisation = slice_.memory_gib / gpu_memory_gib if slice_.time_sliced else None
    try:
        profile = slice_profile(version, instance_type, slice_, memory_utilisation=utilisation)
    except ProfileError:
        return False, f"weights leave no KV cache in {slice_.memory_gib:g} GiB"
    if profile.kv_capacity_tokens < version.engine.max_model_len:
        return False, (
            f"KV cache of {profile.kv_capacity_tokens:,} tokens in {slice_.memory_gib:g} GiB holds no "
            f"max_model_len {version.engine.max_model_len:,} request"
        )
    return True, f"KV cache {profile.kv_capacity_tokens:,} tokens per slice"


def sharing_section(
    stage: StageConfig,
    trace: Trace,
    spec: str,
    *,
    model_ids: list[str] | None,
    utilisation: float,
    window_seconds: float,
    seed: int,
) -> str:
    """The report's GPU-sharing scenario: per instance type, whole vs shared, and each version's fit."""
    by_type: dict[str, list[tuple[Demand, Slice]]] = {}
    for model in stage.models:
        if model_ids and model.id not in model_ids:
            continue
        for version in model.versions:
            if version.weight <= 0:
                continue
            pair = demand_for(
                stage,
                model,
                version,
                trace,
                spec,
                utilisation=utilisation,
                window_seconds=window_seconds,
                seed=seed,
            )
            by_type.setdefault(pair[0].instance_type, []).append(pair)
    lines = [
        f"Scenario `--gpu-sharing {spec}`: every version's work per {window_seconds:g} s window sized at "
        f"{utilisation:.0%} utilisation (the oracle's sizing, not a replay); whole GPUs per version on "
        "nodes of its own against the versions' slices packed onto shared GPUs of one instance type. "
        "On-demand prices. Interference and memory assumptions: planner/sharing.py.",
    ]
    for instance_type, pairs in by_type.items():
        demands = [demand for demand, _ in pairs]
        slice_ = pairs[0][1]
        whole = whole_gpus(demands, window_seconds)
        shared = shared_gpus(demands, slice_, window_seconds)
        lines += [
            "",
            f"**{instance_type}** ({', '.join(d.name for d in demands)}); a slice = "
            f"{slice_.compute_share:.3g} of a GPU's compute x {slice_.interference:g} = "
            f"{slice_.capacity:.3g} whole-GPU replicas, {slice_.memory_gib:g} GiB, {slice_.per_gpu} per GPU.",
            "",
            "| version | peak work (whole-GPU replicas) | mean work | shares | why |",
            "|---|---|---|---|---|",
        ]
        for demand in demands:
            lines.append(
                f"| {demand.name} | {demand.work.max():.2f} | {demand.work.mean():.2f} | "
                f"{'yes' if demand.shareable else 'no'} | {demand.reason} |"
            )
        lines += [
            "",
            "| GPUs | peak nodes | GPU-h | $ (on-demand) | saving |",
            "|---|---|---|---|---|",
        ]
        for fleet in (whole, shared):
            saving = whole.dollars - fleet.dollars
            share = f" ({saving / whole.dollars:.0%})" if whole.dollars else ""
            lines.append(
                f"| {fleet.label} | {fleet.peak_nodes} | {fleet.gpu_hours:.1f} | {fleet.dollars:.2f} | "
                f"{'-' if fleet is whole else f'{saving:.2f}{share}'} |"
            )
    return "\n".join(lines)
