"""GPU sharing between models (planner.sharing): slices, packing and savings, checked by hand."""

from __future__ import annotations

import re

import numpy as np
import pytest

from config import StageConfig
from config.serving import Quantization
from planner import cli
from planner.gpu_slices import TIME_SLICING_THROUGHPUT, SharingError, parse_slice
from planner.policies import group_specs, profile_for
from planner.profiles import replica_profile
from planner.sharing import Demand, demand_for, shared_gpus, sharing_section, whole_gpus
from planner.trace import DEFAULT_TRACE, load_trace, thinned
from tests.unit.charts.helpers import stage_config, stage_data
from tests.unit.planner.conftest import make_trace


def _demand(
    name: str, work: list[float], *, tp: int = 1, shareable: bool = True, per_node: int = 1
) -> Demand:
    return Demand(name, "g5.xlarge", tp, per_node, 1.0, np.asarray(work), shareable, "test")


def test_time_slicing_gives_a_share_of_compute_times_the_stated_interference() -> None:
    slice_ = parse_slice("time-slicing:2", "A10G", 24)
    assert TIME_SLICING_THROUGHPUT == 0.76  # NVIDIA Technical Blog 2026-03-25: 0.76 vs 1.00 req/s per GPU
    assert slice_.compute_share == 0.5
    assert slice_.capacity == pytest.approx(0.38)
    assert (slice_.memory_gib, slice_.per_gpu) == (12, 2)


def test_mig_gives_the_profiles_compute_slices_and_memory_without_interference() -> None:
    # 3g.40gb on an A100-80GB: 3 of 7 compute slices, 40 GB, 2 devices per GPU (config/mig_profiles.py).
    slice_ = parse_slice("mig:3g.40gb", "A100-80GB", 80)
    assert slice_.capacity == pytest.approx(3 / 7)
    assert (slice_.memory_gib, slice_.per_gpu, slice_.interference) == (40, 2, 1.0)
    assert parse_slice("mig:1g.10gb", "H100", 80).per_gpu == 7


@pytest.mark.parametrize(
    ("spec", "gpu", "message"),
    [
        ("mig:3g.40gb", "A10G", "A10G GPUs have no MIG; allowed on A100-40GB, A100-80GB, H100, H200"),
        ("mig:3g.20gb", "A100-80GB", "A100-80GB has no MIG profile '3g.20gb'; allowed: 1g.10gb, 1g.20gb"),
        ("time-slicing:1", "A10G", "time-slicing needs 2 to 16 pods per GPU"),
        ("mps:2", "A10G", "allowed: time-slicing:N (2..16) or mig:PROFILE"),
    ],
)
def test_scenarios_that_cannot_work_are_refused(spec: str, gpu: str, message: str) -> None:
    with pytest.raises(SharingError, match=re.escape(message)):
        parse_slice(spec, gpu, 80)


def test_two_light_models_share_one_gpu_and_halve_the_nodes() -> None:
    # Each model needs 0.3 whole-GPU replicas in each of 60 windows of 60 s.
    demands = [_demand("a", [0.3] * 60), _demand("b", [0.3] * 60)]
    whole = whole_gpus(demands, 60.0)
    # Whole: 1 GPU each (at least one replica), one-GPU nodes: 2 nodes x 1 h = 2 GPU-h, $2.
    assert whole.peak_nodes == 2
    assert whole.gpu_hours == pytest.approx(2.0)
    assert whole.dollars == pytest.approx(2.0)
    # time-slicing:2: 0.3 / 0.38 -> 1 slice each, 2 slices = 1 GPU = 1 node: 1 GPU-h, half the dollars.
    shared = shared_gpus(demands, parse_slice("time-slicing:2", "A10G", 24), 60.0)
    assert shared.peak_nodes == 1
    assert shared.gpu_hours == pytest.approx(1.0)
    # MIG 3g.40gb: 0.3 / (3/7) -> 1 device each, 2 per GPU: also 1 node.
    mig = shared_gpus(demands, parse_slice("mig:3g.40gb", "A100-80GB", 80), 60.0)
    assert mig.gpu_hours == pytest.approx(1.0)


def test_interference_can_make_sharing_cost_more() -> None:
    # 0.5 replicas each: whole 1 GPU each = 2; time-sliced 0.5 / 0.38 -> 2 slices each = 4 slices = 2 GPUs
    # (no saving); at 0.9 each: whole 1 each = 2 GPUs, sliced 3 each = 6 slices = 3 GPUs (50 % more).
    half = [_demand("a", [0.5]), _demand("b", [0.5])]
    busy = [_demand("a", [0.9]), _demand("b", [0.9])]
    slice_ = parse_slice("time-slicing:2", "A10G", 24)
    assert shared_gpus(half, slice_, 3600.0).gpu_hours == whole_gpus(half, 3600.0).gpu_hours == 2.0
    assert shared_gpus(busy, slice_, 3600.0).gpu_hours == 3.0
    # MIG has no interference: 0.9 / (3/7) -> 3 devices each = 6 = 3 GPUs too (3g is 3/7, not 1/2).
    assert shared_gpus(busy, parse_slice("mig:3g.40gb", "A100-80GB", 80), 3600.0).gpu_hours == 3.0


def test_versions_that_cannot_share_keep_whole_gpus_on_nodes_of_their_own() -> None:
    # A 4-GPU tensor-parallel version on 4-GPU nodes needing 1.5 replicas: 2 replicas = 8 GPUs = 2 nodes;
    # two light versions' slices (1 each) pack onto 1 GPU = 1 more 4-GPU node.
    demands = [
        _demand("big", [1.5], tp=4, shareable=False, per_node=4),
        _demand("a", [0.1], per_node=4),
        _demand("b", [0.1], per_node=4),
    ]
    whole = whole_gpus(demands, 3600.0)
    shared = shared_gpus(demands, parse_slice("time-slicing:2", "A10G", 24), 3600.0)
    assert whole.peak_nodes == 2 + 1 + 1
    assert shared.peak_nodes == 2 + 1
    assert whole.gpu_hours - shared.gpu_hours == pytest.approx(4.0)


def test_report_section_names_each_versions_fit(stages: dict[str, StageConfig]) -> None:
    trace = make_trace([float(i) for i in range(0, 3600, 60)], [500] * 60, [100] * 60, duration=3600)
    text = sharing_section(
        stages["prod"], trace, "time-slicing:2", model_ids=None, utilisation=0.7, window_seconds=60, seed=1
    )
    # The 70B runs tensor-parallel on 4 GPUs: it cannot share.
    assert "| llama-3-1-70b/v1 |" in text
    assert "gpus_per_replica 4: no tensor parallelism across shared GPUs" in text
    # Full-precision 8B weights (about 15 GiB) do not fit half of an A10G's 24 GiB.
    assert "weights leave no KV cache in 12 GiB" in text
    assert "| whole GPUs (today) |" in text


def test_cli_refuses_mig_on_a_gpu_without_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--stage", "dev", "--gpu-sharing", "mig:3g.40gb", "--no-progress"]) == 2
    assert "A10G GPUs have no MIG" in capsys.readouterr().err


def test_quantised_staging_versions_share_a10gs_on_light_traffic(stages: dict[str, StageConfig]) -> None:
    """The README's example: staging's v1 and v2 with AWQ weights (5.7 GiB) on a tenth of the bundled
    trace. Whole: v1 and v2 on a g5.2xlarge each all hour and 0.2 GPU-hours more; time-slicing:2 packs
    their slices."""
    staging = stages["staging"]
    models = [
        model.model_copy(
            update={
                "versions": [
                    version.model_copy(
                        update={
                            "weights_gib": 5.7,
                            "engine": version.engine.model_copy(update={"quantization": Quantization.AWQ}),
                        }
                    )
                    for version in model.versions
                ]
            }
        )
        for model in staging.models
    ]
    quantised = staging.model_copy(update={"models": models})
    trace = thinned(load_trace(DEFAULT_TRACE), 0.1, 1)
    demands = [
        demand_for(
            quantised, model, version, trace, "time-slicing:2", utilisation=0.7, window_seconds=60, seed=1
        )[0]
        for model in quantised.models
        for version in model.versions
    ]
    assert all(demand.shareable for demand in demands)
    whole = whole_gpus(demands, 60)
    shared = shared_gpus(demands, parse_slice("time-slicing:2", "A10G", 24), 60)
    # The A10G's measured tensor figure (69.47 TFLOPS, not the A10's 125) makes AWQ prefill slower: 2.0 and
    # 1.6 GPU-hours before.
    assert whole.gpu_hours == pytest.approx(2.2)
    assert shared.gpu_hours == pytest.approx(2.05, abs=0.05)
    assert 1 - shared.dollars / whole.dollars == pytest.approx(0.07, abs=0.01)


# A stage whose config shares GPUs is simulated on its slices (validated configs, as the config tests build).


def test_a_time_sliced_stage_packs_slices_per_node_and_slows_each_replica() -> None:
    data = stage_data()
    data["cluster"]["gpu_node_groups"][0]["sharing"] = {"mode": "time-slicing", "replicas": 2}
    version_data = data["models"][0]["versions"][0]
    version_data["gpu_share"] = {"fraction": 0.5}
    version_data["engine"]["gpu_memory_utilization"] = 0.48
    stage = stage_config(data)
    version = stage.models[0].versions[0]
    spec = group_specs(stage, version)[0]
    assert spec.replicas_per_node == 2  # g5.xlarge: 1 GPU x 2 slices (was 1 whole-GPU replica)
    profile = profile_for(stage, version)
    whole = replica_profile(version, spec.instance_type)  # at the version's 0.48 of the GPU's memory
    # Every time divided by 0.5 x 0.76 = 0.38; the KV cache is the one 0.48 of the GPU leaves.
    assert profile.step_seconds == pytest.approx(whole.step_seconds / 0.38)
    assert profile.prefill_per_token_seconds == pytest.approx(whole.prefill_per_token_seconds / 0.38)
    assert profile.kv_capacity_tokens == whole.kv_capacity_tokens
    assert "time-slicing x2" in profile.description


def test_a_mig_stage_runs_each_replica_on_its_device() -> None:
    data = stage_data()
    group = data["cluster"]["gpu_node_groups"][0]
    group.update(instance_types=["p4de.24xlarge"], sharing={"mode": "mig", "mig_profile": "3g.40gb"})
    data["models"][0]["versions"][0]["gpu_share"] = {"mig_profile": "3g.40gb"}
    stage = stage_config(data)
    version = stage.models[0].versions[0]
    spec = group_specs(stage, version)[0]
    assert spec.replicas_per_node == 16  # 8 A100-80GB x 2 devices of 3g.40gb
    profile = profile_for(stage, version)
    whole = replica_profile(version, spec.instance_type)
    assert profile.step_seconds == pytest.approx(whole.step_seconds * 7 / 3)
    # gpu_memory_utilization 0.9 of the 40 GB device, not of the 80 GB GPU: a smaller KV cache.
    assert profile.kv_capacity_tokens < whole.kv_capacity_tokens / 2


def test_whole_gpu_stages_are_planned_as_before(stages: dict[str, StageConfig]) -> None:
    for stage in stages.values():
        for model in stage.models:
            for version in model.versions:
                spec = group_specs(stage, version)[0]
                assert spec.replicas_per_node == spec.gpus_per_node // version.gpus_per_replica
                assert profile_for(stage, version) == replica_profile(version, spec.instance_type)
