"""GPU sharing: what cannot work is refused with the field, the value and what is allowed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from config import ConfigError
from config.gpu_sharing import advertised_resources, requested_resource
from config.mig_profiles import MIG_PROFILES, mig_profile_memory_gb
from tests.unit.charts.helpers import stage_config, stage_data

SOURCE = "config/dev.yaml"


def time_sliced(replicas: int = 2, fraction: float = 0.5, utilization: float = 0.48) -> dict[str, Any]:
    """dev with its A10G group time-sliced and the 8B model on half a GPU."""
    data = stage_data()
    data["cluster"]["gpu_node_groups"][0]["sharing"] = {"mode": "time-slicing", "replicas": replicas}
    version = data["models"][0]["versions"][0]
    version["gpu_share"] = {"fraction": fraction}
    version["engine"]["gpu_memory_utilization"] = utilization
    return data


def mig(profile: str = "3g.40gb", share: str = "3g.40gb", instance: str = "p4de.24xlarge") -> dict[str, Any]:
    data = stage_data()
    group = data["cluster"]["gpu_node_groups"][0]
    group.update(instance_types=[instance], sharing={"mode": "mig", "mig_profile": profile})
    data["models"][0]["versions"][0]["gpu_share"] = {"mig_profile": share}
    return data


def rejected(data: dict[str, Any], *fragments: str) -> None:
    with pytest.raises(ConfigError) as raised:
        stage_config(data)
    message = str(raised.value)
    assert message.startswith(SOURCE)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def edited(data: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    change(data)
    return data


def test_time_slicing_advertises_slices_and_the_version_requests_one() -> None:
    config = stage_config(time_sliced(replicas=2))
    group = config.cluster.gpu_node_groups[0]
    assert advertised_resources(group) == {"nvidia.com/gpu": 2}
    assert requested_resource(config.models[0].versions[0]) == "nvidia.com/gpu"


def test_mig_advertises_mig_devices_of_the_profile() -> None:
    config = stage_config(mig())
    assert advertised_resources(config.cluster.gpu_node_groups[0]) == {"nvidia.com/mig-3g.40gb": 16}
    assert requested_resource(config.models[0].versions[0]) == "nvidia.com/mig-3g.40gb"


def test_unshared_groups_advertise_whole_gpus() -> None:
    config = stage_config(stage_data("prod"), name="prod")
    for group in config.cluster.gpu_node_groups:
        assert advertised_resources(group) == {"nvidia.com/gpu": group.gpus_per_node}


def test_memory_fractions_of_co_located_models_above_one_are_refused() -> None:
    # Three slices per GPU: three pods at 0.5 could share one GPU, 1.5 of its memory.
    rejected(
        time_sliced(replicas=3, fraction=0.5, utilization=0.48),
        "3 time slices of one GPU can all go to 'v1' (fraction 0.5), 1.50 of the GPU's memory",
        "every fraction at most 1/3",
    )


def test_gpu_memory_utilization_must_match_the_fraction() -> None:
    rejected(
        time_sliced(fraction=0.5, utilization=0.9),
        "engine.gpu_memory_utilization 0.9 does not match gpu_share.fraction 0.5",
        "allowed: 0.45 to 0.5",
    )


def test_tensor_parallelism_across_shared_gpus_is_refused() -> None:
    data = time_sliced()
    data["cluster"]["gpu_node_groups"][0]["instance_types"] = ["g5.12xlarge"]
    data["models"][0]["versions"][0]["gpus_per_replica"] = 2
    rejected(data, "gpus_per_replica 2 with gpu_share: tensor parallelism across shared GPUs is not allowed")


def test_a_whole_gpu_version_on_a_shared_group_is_refused() -> None:
    data = time_sliced()
    del data["models"][0]["versions"][0]["gpu_share"]
    rejected(data, "node group 'a10g-spot' (sharing time-slicing)", "needs gpu_share")


def test_mig_profile_the_gpu_does_not_have_is_refused() -> None:
    rejected(
        mig(profile="3g.20gb", share="3g.20gb"),
        "mig_profile '3g.20gb' does not exist on A100-80GB (p4de.24xlarge)",
        "allowed: 1g.10gb, 1g.20gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb",
    )


def test_mig_on_a_gpu_without_mig_is_refused() -> None:
    rejected(mig(instance="g5.xlarge"), "mode mig: ['g5.xlarge'] have GPUs without MIG")


def test_version_mig_profile_must_be_the_groups() -> None:
    rejected(mig(share="1g.10gb"), "gpu_share.mig_profile '1g.10gb' is not offered", "'3g.40gb' only")


def test_weights_must_fit_the_mig_device() -> None:
    data = mig(profile="1g.10gb", share="1g.10gb")
    data["models"][0]["versions"][0]["weights_gib"] = 9
    rejected(data, "MIG device 1g.10gb gives 9.0", "weights_gib 9")


def test_autoscaler_tags_in_stage_tags_are_refused() -> None:
    data = edited(
        stage_data(), lambda d: d["tags"].update({"k8s.io/cluster-autoscaler/node-template/resources/x": "1"})
    )
    rejected(data, "Cluster Autoscaler tags are derived from the node groups")


def test_device_plugin_labels_are_not_configurable() -> None:
    data = edited(
        stage_data(),
        lambda d: d["cluster"]["gpu_node_groups"][0].update(labels={"nvidia.com/device-plugin.config": "x"}),
    )
    rejected(data, "the nvidia.com/ prefix is set from sharing")


@pytest.mark.parametrize(
    ("sharing", "fragment"),
    [
        ({"mode": "time-slicing"}, "sharing.replicas is required for mode time-slicing"),
        ({"mode": "time-slicing", "replicas": 1}, "greater than or equal to 2"),
        ({"mode": "mig"}, "sharing.mig_profile is required for mode mig"),
        ({"mode": "none", "replicas": 2}, "sharing.replicas is only allowed with mode time-slicing"),
    ],
)
def test_sharing_fields_must_match_the_mode(sharing: dict[str, Any], fragment: str) -> None:
    data = stage_data()
    data["cluster"]["gpu_node_groups"][0]["sharing"] = sharing
    rejected(data, fragment)


def test_gpu_share_needs_exactly_one_kind() -> None:
    data = time_sliced()
    data["models"][0]["versions"][0]["gpu_share"] = {"fraction": 0.5, "mig_profile": "1g.10gb"}
    rejected(data, "gpu_share needs exactly one of mig_profile or fraction")


def test_mig_table_pins_the_upstream_profiles() -> None:
    # mig-parted's all-<profile> layouts (config/mig_profiles.py has the source).
    assert MIG_PROFILES["H100"]["1g.10gb"] == 7
    assert MIG_PROFILES["A100-40GB"]["1g.10gb"] == 4
    assert MIG_PROFILES["H200"]["3g.71gb"] == 2
    assert mig_profile_memory_gb("7g.141gb") == 141
