"""NVIDIA device plugin: advertises ``nvidia.com/gpu`` (or time slices, or MIG devices) on GPU nodes.

No driver install: the AL2023 NVIDIA AMI already carries the driver and container toolkit.

Sharing (docs/gpu-sharing.md): the chart's ``config.map`` holds one plugin config per shared node group,
keyed by the group name, which the node carries in the ``nvidia.com/device-plugin.config`` label; the
config-manager sidecar picks it. Values keys and the config format are those of chart v0.18.0
(deployments/helm/nvidia-device-plugin/values.yaml, api/config/v1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from config.cluster import GpuNodeGroupConfig
from config.gpu_sharing import SharingMode
from constructs_lib.addons.helm import GPU_TAINT_TOLERATION, HelmAddon, HelmSource, gpu_nodes_only
from contract.kubernetes import GPU_RESOURCE

SOURCE = HelmSource(
    chart="nvidia-device-plugin",
    repository="https://nvidia.github.io/k8s-device-plugin",
    version="0.18.0",
    namespace="kube-system",
    release="nvidia-device-plugin",
)
DEFAULT_CONFIG = "default"


def plugin_config(group: GpuNodeGroupConfig | None) -> dict[str, Any]:
    """The device plugin's config file (version v1) for a node group; None: unshared GPUs."""
    sharing = None if group is None else group.sharing
    if sharing is None or sharing.mode is SharingMode.NONE:
        return {"version": "v1", "flags": {"migStrategy": "none"}}
    if sharing.mode is SharingMode.MIG:
        # mixed: each MIG device is its own resource, nvidia.com/mig-<profile>, so a pod cannot land
        # on a device of another size.
        return {"version": "v1", "flags": {"migStrategy": "mixed"}}
    return {
        "version": "v1",
        "flags": {"migStrategy": "none"},
        "sharing": {
            "timeSlicing": {
                # Two slices are not two GPUs: refuse requests for more than one (no TP on slices).
                "failRequestsGreaterThanOne": True,
                "resources": [{"name": GPU_RESOURCE, "replicas": sharing.replicas}],
            }
        },
    }


def values(gpu_node_groups: Sequence[GpuNodeGroupConfig] = ()) -> dict[str, Any]:
    shared = [group for group in gpu_node_groups if group.sharing.mode is not SharingMode.NONE]
    sharing_config: dict[str, Any] = {}
    if shared:
        configs = {
            DEFAULT_CONFIG: plugin_config(None),
            **{group.name: plugin_config(group) for group in shared},
        }
        sharing_config = {
            "config": {
                "map": {name: yaml.safe_dump(body, sort_keys=False) for name, body in configs.items()},
                "default": DEFAULT_CONFIG,
            }
        }
    return {
        "tolerations": [GPU_TAINT_TOLERATION],
        "affinity": gpu_nodes_only(),
        # Node and GPU feature discovery would add a second labelling scheme; node groups label.
        "gfd": {"enabled": False},
        "nfd": {"enabled": False},
        "priorityClassName": "system-node-critical",
        **sharing_config,
    }


class NvidiaDevicePlugin(HelmAddon):
    """Exposes ``chart``.

    :param gpu_node_groups: the stage's GPU node groups; shared ones get a plugin config. Default: none.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster: eks.ICluster,
        gpu_node_groups: Sequence[GpuNodeGroupConfig] = (),
    ) -> None:
        super().__init__(scope, id_, source=SOURCE)
        self._install(cluster=cluster, values=values(gpu_node_groups))
