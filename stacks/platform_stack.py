"""Cluster add-ons: GPU enablement, node and pod autoscaling, metrics exporters, logs and traces."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_aps as aps
from aws_cdk import aws_kms as kms
from constructs import Construct

from config import StageConfig
from constructs_lib.addons.cluster_autoscaler import ClusterAutoscaler
from constructs_lib.addons.dcgm_exporter import DcgmExporter
from constructs_lib.addons.eks_managed import EksManagedAddons
from constructs_lib.addons.envoy_gateway import EnvoyAiGateway
from constructs_lib.addons.fluent_bit import FluentBit
from constructs_lib.addons.helm import HelmAddon, wait_for_pod_identity_agent
from constructs_lib.addons.keda import Keda
from constructs_lib.addons.kube_state_metrics import KubeStateMetrics
from constructs_lib.addons.namespaces import PlatformNamespaces
from constructs_lib.addons.node_exporter import NodeExporter
from constructs_lib.addons.nvidia_device_plugin import NvidiaDevicePlugin
from constructs_lib.addons.otel_collector import OtelCollector
from k8s_charts.images import docker_hub_mirror
from stacks.cluster_stack import ClusterHandle, gpu_node_groups_revision


class PlatformStack(Stack):
    """Every add-on as an attribute named after it (``cluster_autoscaler``, ``keda``, ...).

    Helm releases go through the cluster's kubectl provider; AWS permissions through Pod Identity.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: StageConfig,
        cluster: ClusterHandle,
        logs_key: kms.IKey,
        workspace: aps.CfnWorkspace,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        target = cluster.cluster
        # Namespaces with their Pod Security labels, before any chart creates them unlabelled.
        model_routing = config.ingress.routing_mode == "model" and bool(config.models)
        self.namespaces = PlatformNamespaces(self, "Namespaces", cluster=target, model_routing=model_routing)
        self.managed_addons = EksManagedAddons(
            self, "ManagedAddons", cluster=target, versions=config.cluster.addon_versions
        )
        self.nvidia_device_plugin = NvidiaDevicePlugin(
            self, "NvidiaDevicePlugin", cluster=target, gpu_node_groups=config.cluster.gpu_node_groups
        )
        self.dcgm_exporter = DcgmExporter(self, "DcgmExporter", cluster=target)
        self.kube_state_metrics = KubeStateMetrics(self, "KubeStateMetrics", cluster=target)
        self.node_exporter = NodeExporter(self, "NodeExporter", cluster=target)
        self.cluster_autoscaler = ClusterAutoscaler(
            self,
            "ClusterAutoscaler",
            cluster=target,
            cluster_name=cluster.name,
            kubernetes_version=config.cluster.kubernetes_version,
            settings=config.cluster_autoscaler,
            gpu_groups=list(config.cluster.gpu_node_groups),
            nodegroups=cluster.gpu_node_groups,
            nodegroups_revision=gpu_node_groups_revision(config, list(config.cluster.gpu_node_groups)),
        )
        self.keda = Keda(self, "Keda", cluster=target, workspace=workspace)
        self.fluent_bit = FluentBit(
            self,
            "FluentBit",
            cluster=target,
            logs_key=logs_key,
            retention_days=config.observability.container_log_retention_days,
        )
        self.otel_collector = OtelCollector(
            self,
            "OtelCollector",
            cluster=target,
            sampling_ratio=config.observability.trace_sampling_ratio,
            image_mirror=(
                docker_hub_mirror(account=self.account, region=self.region, url_suffix=self.url_suffix)
                if config.image_cache.docker_hub_secret_name
                else ""
            ),
        )
        # `model` routing only: the gateway controllers the serving stack's Gateway and routes need.
        self.envoy_ai_gateway = (
            EnvoyAiGateway(
                self,
                "EnvoyAiGateway",
                cluster=target,
                image_mirror=(
                    docker_hub_mirror(account=self.account, region=self.region, url_suffix=self.url_suffix)
                    if config.image_cache.docker_hub_secret_name
                    else ""
                ),
            )
            if model_routing
            else None
        )
        # Which add-ons wait for the Pod Identity agent or a labelled namespace follows from each add-on.
        addons = [node for node in self.node.find_all() if isinstance(node, HelmAddon)]
        wait_for_pod_identity_agent(addons, self.managed_addons.addons["eks-pod-identity-agent"])
        self.namespaces.precede(addons)
