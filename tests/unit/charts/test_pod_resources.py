"""Pod sizes derive from the smallest instance a version may land on."""

from __future__ import annotations

from k8s_charts.pod_resources import CACHE_GIB, pod_resources
from tests.unit.charts.helpers import stage_config, stage_data


def test_tensor_parallel_pod_gets_its_share_of_a_multi_gpu_node_and_more_shm() -> None:
    prod = stage_config(stage_data("prod"), "prod")
    version = prod.models[1].versions[0]
    groups = [prod.cluster.gpu_node_group(name) for name in version.node_groups]
    sizes = pod_resources(version, [group for group in groups if group])
    # g6e.12xlarge: 4 GPUs, 48 vCPUs, 384 GiB; a 4-GPU pod takes the node's three quarters.
    assert (sizes.cpu, sizes.memory_gib, sizes.shm_gib) == (36, 288, 16)
    assert sizes.shm_gib < sizes.memory_gib


def test_hub_sources_get_cache_room_for_their_weights() -> None:
    data = stage_data()
    data["models"][0]["versions"][0]["source"] = "meta-llama/Llama-3.1-8B-Instruct"
    dev = stage_config(data)
    version = dev.models[0].versions[0]
    sizes = pod_resources(version, list(dev.cluster.gpu_node_groups))
    assert sizes.cache_gib == CACHE_GIB + 7  # ceil(5.7 GiB x 1.2)
    streamed = stage_config(stage_data()).models[0].versions[0]
    assert pod_resources(streamed, list(dev.cluster.gpu_node_groups)).cache_gib == CACHE_GIB
