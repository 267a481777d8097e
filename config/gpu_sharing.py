"""GPU sharing between models: per GPU node group a sharing mode, per model version a share request.

Upstream facts (NVIDIA k8s-device-plugin v0.18.0, the pinned chart; api/config/v1 and internal/rm):
- time-slicing advertises each GPU `replicas` times under the same resource name (renameByDefault
  false); `replicas` must be >= 2; `failRequestsGreaterThanOne` refuses a request for more than one
  shared GPU.
- MIG strategy `mixed` advertises each MIG device as `nvidia.com/mig-<profile>`.
MIG profiles per GPU: config/mig_profiles.py (from NVIDIA mig-parted's default configuration).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from config.base import Strict
from config.catalog import GPU_INSTANCE_TYPES
from config.mig_profiles import MIG_PROFILES, mig_profile_memory_gb
from contract.kubernetes import GPU_RESOURCE

if TYPE_CHECKING:
    from config.cluster import GpuNodeGroupConfig
    from config.serving import ModelVersion
    from config.stage import StageConfig

MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
MAX_TIME_SLICES = 16
# vLLM's gpu_memory_utilization is this instance's share of the whole GPU's memory; it must stay
# within the share the model was given, and not leave most of the share unused.
FRACTION_SLACK = 0.05


class SharingMode(StrEnum):
    NONE = "none"
    TIME_SLICING = "time-slicing"
    MIG = "mig"


class GpuSharingConfig(Strict):
    """How a node group's GPUs are shared. Default: not shared (one pod per GPU)."""

    mode: SharingMode = SharingMode.NONE
    replicas: int | None = Field(
        default=None, ge=2, le=MAX_TIME_SLICES, description="time-slicing: pods per GPU."
    )
    mig_profile: str | None = Field(
        default=None, description="mig: the profile every GPU of the group is split into, e.g. 3g.40gb."
    )

    @model_validator(mode="after")
    def _fields_match_mode(self) -> GpuSharingConfig:
        if self.mode is SharingMode.TIME_SLICING and self.replicas is None:
            raise ValueError("sharing.replicas is required for mode time-slicing (2 to 16 pods per GPU)")
        if self.mode is SharingMode.MIG and self.mig_profile is None:
            raise ValueError("sharing.mig_profile is required for mode mig (e.g. 3g.40gb)")
        if self.mode is not SharingMode.TIME_SLICING and self.replicas is not None:
            raise ValueError(f"sharing.replicas is only allowed with mode time-slicing, not {self.mode}")
        if self.mode is not SharingMode.MIG and self.mig_profile is not None:
            raise ValueError(f"sharing.mig_profile is only allowed with mode mig, not {self.mode}")
        return self


class GpuShare(Strict):
    """What one replica of a model version takes of a shared GPU: a MIG device, or a time slice with
    a memory fraction."""

    mig_profile: str | None = None
    fraction: float | None = Field(default=None, gt=0, lt=1, description="Share of the GPU's memory.")

    @model_validator(mode="after")
    def _one_kind(self) -> GpuShare:
        if (self.mig_profile is None) == (self.fraction is None):
            raise ValueError("gpu_share needs exactly one of mig_profile or fraction")
        return self


def advertised_resources(group: GpuNodeGroupConfig) -> dict[str, int]:
    """Extended resources a node of the group advertises once the device plugin runs (what the Cluster
    Autoscaler's node-template tags must say for a scale-up from zero)."""
    sharing = group.sharing
    if sharing.mode is SharingMode.TIME_SLICING:
        assert sharing.replicas is not None
        return {GPU_RESOURCE: group.gpus_per_node * sharing.replicas}
    if sharing.mode is SharingMode.MIG:
        assert sharing.mig_profile is not None
        per_gpu = MIG_PROFILES[group.instance.gpu_model][sharing.mig_profile]
        return {MIG_RESOURCE_PREFIX + sharing.mig_profile: group.gpus_per_node * per_gpu}
    return {GPU_RESOURCE: group.gpus_per_node}


def requested_resource(version: ModelVersion) -> str:
    """The extended resource one replica requests (one of it, or gpus_per_replica whole GPUs)."""
    share = version.gpu_share
    if share is not None and share.mig_profile is not None:
        return MIG_RESOURCE_PREFIX + share.mig_profile
    return GPU_RESOURCE


def check_group_sharing(group: GpuNodeGroupConfig) -> None:
    """MIG only on GPUs that have it, with a profile that GPU has."""
    sharing = group.sharing
    if sharing.mode is not SharingMode.MIG:
        return
    where = f"cluster.gpu_node_groups[{group.name}].sharing"
    models = {name: _gpu_model(name) for name in group.instance_types}
    without = sorted(name for name, model in models.items() if model not in MIG_PROFILES)
    if without:
        raise ValueError(
            f"{where}.mode mig: {without} have GPUs without MIG; allowed: instance types with "
            f"{', '.join(sorted(MIG_PROFILES))} GPUs (p4d, p4de, p5)"
        )
    for name, model in models.items():
        profiles = MIG_PROFILES[model]
        if sharing.mig_profile not in profiles:
            raise ValueError(
                f"{where}.mig_profile {sharing.mig_profile!r} does not exist on {model} ({name}); "
                f"allowed: {', '.join(profiles)}"
            )


def check_version_sharing(
    where: str, version: ModelVersion, groups: list[GpuNodeGroupConfig], *, co_located: list[ModelVersion]
) -> None:
    """A version's share request against every node group it may run on."""
    share = version.gpu_share
    for group in groups:
        mode = group.sharing.mode
        at = f"{where} on node group {group.name!r} (sharing {mode})"
        if share is None:
            if mode is not SharingMode.NONE:
                raise ValueError(
                    f"{at}: a version on a shared node group needs gpu_share (fraction for time-slicing, "
                    "mig_profile for mig); without it the pod would take a slice while sized for a GPU"
                )
            continue
        if version.gpus_per_replica != 1:
            raise ValueError(
                f"{where}.gpus_per_replica {version.gpus_per_replica} with gpu_share: tensor parallelism "
                "across shared GPUs is not allowed; allowed: gpus_per_replica 1 with gpu_share, or whole "
                "GPUs without it"
            )
        if share.fraction is not None:
            _check_fraction(at, version, group, co_located)
        else:
            _check_mig(at, version, group)


def _check_fraction(
    at: str, version: ModelVersion, group: GpuNodeGroupConfig, co_located: list[ModelVersion]
) -> None:
    share = version.gpu_share
    assert share is not None
    assert share.fraction is not None
    if group.sharing.mode is not SharingMode.TIME_SLICING:
        raise ValueError(f"{at}: gpu_share.fraction needs a time-slicing node group")
    utilization = version.engine.gpu_memory_utilization
    if not share.fraction - FRACTION_SLACK <= utilization <= share.fraction:
        raise ValueError(
            f"{at}: engine.gpu_memory_utilization {utilization} does not match gpu_share.fraction "
            f"{share.fraction}; allowed: {share.fraction - FRACTION_SLACK:.2f} to {share.fraction} (vLLM "
            "reserves that share of the whole GPU's memory)"
        )
    # Any `replicas` pods placed on the node can land on the same GPU: the largest shares must fit.
    replicas = group.sharing.replicas
    assert replicas is not None
    fractions = sorted(
        (v.gpu_share.fraction for v in co_located if v.gpu_share and v.gpu_share.fraction), reverse=True
    )
    worst = replicas * fractions[0]
    if worst > 1:
        largest = max(co_located, key=lambda v: (v.gpu_share.fraction if v.gpu_share else 0) or 0)
        raise ValueError(
            f"{at}: {replicas} time slices of one GPU can all go to {largest.name!r} (fraction "
            f"{fractions[0]}), {worst:.2f} of the GPU's memory; allowed: co-located fractions summing to "
            f"at most 1, so every fraction at most 1/{replicas} = {1 / replicas:.3f} on this group"
        )


def _check_mig(at: str, version: ModelVersion, group: GpuNodeGroupConfig) -> None:
    share = version.gpu_share
    assert share is not None
    assert share.mig_profile is not None
    if group.sharing.mode is not SharingMode.MIG:
        raise ValueError(f"{at}: gpu_share.mig_profile needs a mig node group")
    if share.mig_profile != group.sharing.mig_profile:
        raise ValueError(
            f"{at}: gpu_share.mig_profile {share.mig_profile!r} is not offered; the group's GPUs are split "
            f"into {group.sharing.mig_profile!r} only"
        )
    if version.weights_gib is not None:
        usable = mig_profile_memory_gb(share.mig_profile) * version.engine.gpu_memory_utilization
        if version.weights_gib * 1.2 > usable:
            raise ValueError(
                f"{at}: weights_gib {version.weights_gib} needs about {version.weights_gib * 1.2:.1f} GiB "
                f"with headroom but MIG device {share.mig_profile} gives {usable:.1f} at "
                "gpu_memory_utilization; use a larger profile or quantization"
            )


def check_stage_sharing(stage: StageConfig) -> None:
    """Every rule across node groups and model versions; called from StageConfig validation."""
    for group in stage.cluster.gpu_node_groups:
        check_group_sharing(group)
        nvidia = [key for key in group.labels if key.startswith("nvidia.com/")]
        if nvidia:
            raise ValueError(
                f"cluster.gpu_node_groups[{group.name}].labels {nvidia}: the nvidia.com/ prefix is set "
                "from sharing (device plugin config label); not allowed in labels"
            )
    autoscaler = [key for key in stage.tags if key.startswith("k8s.io/cluster-autoscaler")]
    if autoscaler:
        raise ValueError(
            f"tags {autoscaler}: Cluster Autoscaler tags are derived from the node groups (resources, "
            "labels, taints); a stage tag would reach every node group and advertise the wrong resources"
        )
    for group in stage.cluster.gpu_node_groups:
        on_group = [
            version
            for model in stage.models
            for version in model.versions
            if group.name in version.node_groups
        ]
        for model in stage.models:
            for version in model.versions:
                if group.name in version.node_groups:
                    check_version_sharing(
                        f"models[{model.id}].versions[{version.name}]", version, [group], co_located=on_group
                    )


def _gpu_model(instance_type: str) -> str:
    return GPU_INSTANCE_TYPES[instance_type].gpu_model
