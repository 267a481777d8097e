"""The Cluster Autoscaler's GPU scale-down threshold comes from the stage config.

Upstream fact (kubernetes/autoscaler, tag cluster-autoscaler-1.36.0, the release pinned in
config/kubernetes_releases.py): config/flags/flags.go defines ``scale-down-gpu-utilization-threshold``
("Utilization calculation only cares about gpu resource for accelerator node. cpu and memory
utilization will be ignored") and config/const.go sets DefaultScaleDownGpuUtilizationThreshold = 0.5.
So on GPU nodes the CPU/memory
``scale-down-utilization-threshold`` has no effect; only this flag does.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config.kubernetes_releases import RELEASES
from config.platform import ClusterAutoscalerConfig
from constructs_lib.addons.cluster_autoscaler import values

GPU_FLAG = "scale-down-gpu-utilization-threshold"


def _args(settings: ClusterAutoscalerConfig) -> dict[str, object]:
    extra = values(
        cluster_name="c",
        region="us-east-1",
        kubernetes_version="1.36",
        settings=settings,
        priorities_text="",
    )["extraArgs"]
    assert isinstance(extra, dict)
    return extra


def test_gpu_threshold_is_passed_from_config_separately_from_the_cpu_memory_one() -> None:
    args = _args(
        ClusterAutoscalerConfig(
            scale_down_utilization_threshold=0.5, scale_down_gpu_utilization_threshold=0.3
        )
    )
    assert args[GPU_FLAG] == 0.3
    assert args["scale-down-utilization-threshold"] == 0.5


def test_gpu_threshold_defaults_to_the_upstream_default() -> None:
    assert _args(ClusterAutoscalerConfig())[GPU_FLAG] == 0.5
    assert (
        RELEASES["1.36"].autoscaler_image_tag == "v1.36.0"
    )  # the release whose flags.go was checked (module docstring)


@pytest.mark.parametrize("bad", [0, 1.5])
def test_gpu_threshold_out_of_range_is_rejected(bad: float) -> None:
    with pytest.raises(ValidationError, match="scale_down_gpu_utilization_threshold"):
        ClusterAutoscalerConfig(scale_down_gpu_utilization_threshold=bad)
