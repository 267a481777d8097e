"""All charts of a stage, built from its config: shared by the serving stack and the GitOps export."""

from __future__ import annotations

from dataclasses import dataclass

import cdk8s

from config import StageConfig
from config.cluster import GpuNodeGroupConfig
from config.serving import ModelVersion
from config.subnets import load_balancer_source_cidrs
from contract.kubernetes import instance_name
from contract.serving import API_KEY_SECRET, StageValues
from k8s_charts.api_key import ApiKeyChart
from k8s_charts.model_endpoint import ModelEndpointChart
from k8s_charts.model_gateway import ModelGatewayChart
from k8s_charts.model_ingress import ModelIngressChart
from k8s_charts.models_namespace import ModelsNamespaceChart


@dataclass(frozen=True)
class StageCharts:
    namespace: ModelsNamespaceChart
    api_key: ApiKeyChart | None  # None when the stage's ingress has no authentication
    endpoints: dict[str, ModelEndpointChart]  # by instance name, <model-id>-<version>
    ingress: ModelIngressChart | None  # None when the stage serves no model
    gateway: ModelGatewayChart | None = None  # only with ingress.routing `model` and a model

    def all(self) -> dict[str, cdk8s.Chart]:
        """Every chart by its file name, in apply order (namespace first)."""
        charts: dict[str, cdk8s.Chart] = {"models-namespace": self.namespace}
        if self.api_key is not None:
            charts["api-key"] = self.api_key
        charts.update({f"model-{name}": chart for name, chart in self.endpoints.items()})
        if self.gateway is not None:
            charts["model-gateway"] = self.gateway
        if self.ingress is not None:
            charts["ingress"] = self.ingress
        return charts


def _node_groups(config: StageConfig, version: ModelVersion) -> list[GpuNodeGroupConfig]:
    groups = [config.cluster.gpu_node_group(name) for name in version.node_groups]
    return [group for group in groups if group is not None]  # names are validated on load


def build_stage_charts(app: cdk8s.App, *, config: StageConfig, values: StageValues) -> StageCharts:
    vpc_cidr = config.network.vpc_cidr
    source_cidrs = load_balancer_source_cidrs(
        vpc_cidr, len(config.availability_zones), internet_facing=config.ingress.scheme == "internet-facing"
    )
    namespace = ModelsNamespaceChart(app, "models-namespace")
    requires_api_key = config.ingress.requires_api_key
    model_routing = config.ingress.routing_mode == "model"
    # In `model` mode the ALB sends to the gateway, never to a model pod, and the pods check no key:
    # they admit only the scraper's (edge) subnets, not an internet-facing ALB's public ones.
    pod_source_cidrs = (
        load_balancer_source_cidrs(vpc_cidr, len(config.availability_zones), internet_facing=False)
        if model_routing
        else source_cidrs
    )
    api_key = ApiKeyChart(app, "api-key", values=values) if requires_api_key else None
    endpoints = {
        instance_name(model.id, version.name): ModelEndpointChart(
            app,
            f"model-{instance_name(model.id, version.name)}",
            model=model,
            version=version,
            node_groups=_node_groups(config, version),
            values=values,
            source_cidrs=pod_source_cidrs,
            # In `model` mode the gateway checks the key (SecurityPolicy); only it reaches the pods' API.
            api_key_secret=API_KEY_SECRET if requires_api_key and not model_routing else None,
            admit_gateway=model_routing,
        )
        for model in config.models
        for version in model.versions
    }
    ingress = None
    if config.models:
        ingress = ModelIngressChart(
            app,
            "ingress",
            models=list(config.models),
            ingress=config.ingress,
            values=values,
            stage=config.name,
            vpc_cidr=vpc_cidr,
        )
    gateway = None
    if config.models and model_routing:
        gateway = ModelGatewayChart(
            app,
            "model-gateway",
            models=list(config.models),
            values=values,
            source_cidrs=source_cidrs,
            scraper_cidrs=pod_source_cidrs,  # the edge subnets: what the model pods admit in this mode
            api_key_secret=API_KEY_SECRET,  # `model` mode requires ingress.auth api-key (config/serving.py)
        )
    return StageCharts(
        namespace=namespace, api_key=api_key, endpoints=endpoints, ingress=ingress, gateway=gateway
    )
