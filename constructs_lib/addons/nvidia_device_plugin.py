"""NVIDIA device plugin: advertises ``nvidia.com/gpu`` on GPU nodes.

No driver install: the AL2023 NVIDIA AMI already carries the driver and container toolkit.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from constructs_lib.addons.helm import GPU_TAINT_TOLERATION, HelmSource, gpu_nodes_only, helm_release

SOURCE = HelmSource(
    chart="nvidia-device-plugin",
    repository="https://nvidia.github.io/k8s-device-plugin",
    version="0.18.0",
    namespace="kube-system",
    release="nvidia-device-plugin",
)


def values() -> dict[str, Any]:
    return {
        "tolerations": [GPU_TAINT_TOLERATION],
        "affinity": gpu_nodes_only(),
        # Node and GPU feature discovery would add a second labelling scheme; node groups label.
        "gfd": {"enabled": False},
        "nfd": {"enabled": False},
        "priorityClassName": "system-node-critical",
    }


class NvidiaDevicePlugin(Construct):
    """Exposes ``chart``."""

    def __init__(self, scope: Construct, id_: str, *, cluster: eks.ICluster) -> None:
        super().__init__(scope, id_)
        self.chart = helm_release(self, "Chart", cluster=cluster, source=SOURCE, values=values())
