"""`model` routing: Envoy AI Gateway behind the ALB routes on the OpenAI body's `model`.

Only in stages with `ingress.routing: model`. Objects, all in namespace `models` (Envoy Gateway
runs the proxy in the Gateway's namespace, `deploy.type: GatewayNamespace`, constructs_lib/addons/
envoy_gateway.py), checked against Envoy Gateway v1.8.3 and Envoy AI Gateway v1.1.0:

- EnvoyProxy: the data plane's Deployment (2+ replicas on the system nodes, PDB), a ClusterIP
  Service with a fixed name (the ALB's target), and a drain as long as the longest request.
- Gateway (HTTP listener) and a ClientTrafficPolicy raising the 32 KiB request buffer: the gateway
  reads the whole body to find `model`.
- Per model version: an Envoy Gateway Backend (the version's Service by DNS) and an AIServiceBackend
  (schema OpenAI). AI Gateway v1.1.0 allows one InferencePool per rule and no weights between
  pools, so weighted versions need AIServiceBackends (api/v1alpha1/ai_gateway_route.go).
- Per model: an AIGatewayRoute with one rule matching `x-ai-eg-model` (filled from the body's
  `model`) to its versions' backends, weighted as in config.
- A NetworkPolicy for the Envoy pods: the ALB and scraper subnets in; DNS, the xDS server and the
  model pods out.
"""

from __future__ import annotations

from typing import Any

import cdk8s
from constructs import Construct

from config.serving import ModelConfig
from contract.kubernetes import (
    APP_NAME_LABEL,
    METRICS_SCRAPER_NAMESPACE_LABEL,
    MODELS_NAMESPACE,
    NODE_GROUP_LABEL,
    VLLM_APP_NAME,
    instance_name,
)
from contract.serving import StageValues
from k8s_charts.api_object import api_object
from k8s_charts.filter_sidecar import FILTER_PORT
from k8s_charts.images import docker_hub_image
from k8s_charts.shutdown import PROPAGATION_SECONDS
from k8s_charts.vllm_args import VLLM_PORT

ENVOY_GATEWAY_NAMESPACE = "envoy-gateway-system"  # the controller's (chart default)
GATEWAY_CLASS = "envoy-gateway"  # created with the controller (constructs_lib/addons/envoy_gateway.py)
GATEWAY_NAME = "model-gateway"
ENVOY_SERVICE = "model-gateway"
"""The Envoy data plane's Service: EnvoyProxy spec.provider.kubernetes.envoyService.name."""
LISTENER_PORT = 8080
"""Above 1023, so Envoy Gateway does not shift the container port (internal/gatewayapi/listener.go)."""
READINESS_PORT = 19003  # Envoy Gateway: bootstrap.EnvoyReadinessPort, path /ready
READINESS_PATH = "/ready"
STATS_PORT = 19001  # Envoy Gateway: bootstrap.EnvoyStatsPort, /stats/prometheus
EXTPROC_METRICS_PORT = 1064  # AI Gateway ext_proc sidecar admin port (aigw-admin), /metrics
XDS_PORT = 18000  # the Envoy Gateway controller's xDS server (chart: deployment.ports grpc)
ENVOY_IMAGE = "envoyproxy/envoy:distroless-v1.38.3"  # Envoy Gateway v1.8.3 DefaultEnvoyProxyImage
REPLICAS = 2
MODEL_HEADER = "x-ai-eg-model"  # AI Gateway fills it from the request body's `model`
# Prompts with long contexts, images as data URLs and many-turn chats exceed Envoy Gateway's
# default 32 KiB; the gateway buffers the whole body before routing (AI Gateway examples/basic).
REQUEST_BUFFER_LIMIT = "16Mi"
ENVOY_POD_LABELS = {
    # Envoy Gateway labels every proxy pod (internal/infrastructure/kubernetes/proxy/resource.go
    # EnvoyAppLabel, internal/gatewayapi/translator.go OwningGatewayNameLabel).
    "app.kubernetes.io/managed-by": "envoy-gateway",
    "app.kubernetes.io/component": "proxy",
    "gateway.envoyproxy.io/owning-gateway-name": GATEWAY_NAME,
}


def serving_port(model: ModelConfig) -> int:
    """The pod port the gateway's connections arrive on: the filter sidecar's when filtering is on."""
    return FILTER_PORT if model.filtering.enabled else VLLM_PORT


def drain_seconds(models: list[ModelConfig]) -> int:
    """Envoy keeps draining connections this long: the longest request of any version, after the ALB
    has had time to stop sending new ones."""
    return PROPAGATION_SECONDS + max(v.max_request_seconds for m in models for v in m.versions)


def route_rule(model: ModelConfig) -> dict[str, Any]:
    """One rule: the body's `model` (vLLM's served name) to the versions, weighted as in config."""
    longest = max(version.max_request_seconds for version in model.versions)
    return {
        "name": model.id,
        "matches": [
            {
                "headers": [
                    {"type": "Exact", "name": MODEL_HEADER, "value": model.versions[0].served_model_name}
                ]
            }
        ],
        "backendRefs": [
            {"name": instance_name(model.id, version.name), "weight": version.weight}
            for version in model.versions
        ],
        # AI Gateway's default request timeout is 60 s (GetTimeoutsOrDefault): it would cut streams.
        "timeouts": {"request": f"{longest}s"},
    }


class ModelGatewayChart(cdk8s.Chart):
    """Props:
    models: the registry (one AIGatewayRoute per model, one backend per version).
    values: deploy-time values (the Docker Hub pull-through cache prefix).
    source_cidrs: the ALB's and the AMP scraper's subnets (config.subnets.load_balancer_source_cidrs).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        models: list[ModelConfig],
        values: StageValues,
        source_cidrs: list[str],
    ) -> None:
        super().__init__(scope, id_, namespace=MODELS_NAMESPACE, disable_resource_name_hashes=True)
        labels = {APP_NAME_LABEL: "model-gateway"}
        drain = drain_seconds(models)
        self.envoy_proxy = api_object(
            self,
            "EnvoyProxy",
            api_version="gateway.envoyproxy.io/v1alpha1",
            kind="EnvoyProxy",
            metadata=cdk8s.ApiObjectMetadata(name=GATEWAY_NAME, labels=labels),
            spec={
                "provider": {
                    "type": "Kubernetes",
                    "kubernetes": {
                        "envoyDeployment": {
                            "replicas": REPLICAS,
                            "pod": {
                                "nodeSelector": {NODE_GROUP_LABEL: "system"},
                                # One replica per node where possible: a node drain keeps one serving.
                                "affinity": {
                                    "podAntiAffinity": {
                                        "preferredDuringSchedulingIgnoredDuringExecution": [
                                            {
                                                "weight": 100,
                                                "podAffinityTerm": {
                                                    "topologyKey": "kubernetes.io/hostname",
                                                    "labelSelector": {"matchLabels": ENVOY_POD_LABELS},
                                                },
                                            }
                                        ]
                                    }
                                },
                            },
                            "container": {
                                "image": docker_hub_image(ENVOY_IMAGE, mirror=values.docker_hub_mirror)
                            },
                        },
                        "envoyService": {"name": ENVOY_SERVICE, "type": "ClusterIP"},
                        "envoyPDB": {"minAvailable": 1},
                    },
                },
                # The shutdown manager drains listeners for at least minDrainDuration, then until
                # connections close or drainTimeout; the grace period is drainTimeout + 300 s
                # (resource_provider.go expectedTerminationGracePeriodSeconds).
                "shutdown": {"drainTimeout": f"{drain}s", "minDrainDuration": f"{PROPAGATION_SECONDS}s"},
            },
        )
        self.gateway = api_object(
            self,
            "Gateway",
            api_version="gateway.networking.k8s.io/v1",
            kind="Gateway",
            metadata=cdk8s.ApiObjectMetadata(name=GATEWAY_NAME, labels=labels),
            spec={
                "gatewayClassName": GATEWAY_CLASS,
                "listeners": [{"name": "http", "protocol": "HTTP", "port": LISTENER_PORT}],
                "infrastructure": {
                    "parametersRef": {
                        "group": "gateway.envoyproxy.io",
                        "kind": "EnvoyProxy",
                        "name": GATEWAY_NAME,
                    }
                },
            },
        )
        self.client_traffic_policy = api_object(
            self,
            "ClientTrafficPolicy",
            api_version="gateway.envoyproxy.io/v1alpha1",
            kind="ClientTrafficPolicy",
            metadata=cdk8s.ApiObjectMetadata(name=GATEWAY_NAME, labels=labels),
            spec={
                "targetRefs": [
                    {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY_NAME}
                ],
                "connection": {"bufferLimit": REQUEST_BUFFER_LIMIT},
            },
        )
        self.backends: dict[str, cdk8s.ApiObject] = {}
        self.service_backends: dict[str, cdk8s.ApiObject] = {}
        for model in models:
            for version in model.versions:
                name = instance_name(model.id, version.name)
                self.backends[name] = api_object(
                    self,
                    f"Backend-{name}",
                    api_version="gateway.envoyproxy.io/v1alpha1",
                    kind="Backend",
                    metadata=cdk8s.ApiObjectMetadata(name=name, labels=labels),
                    spec={
                        # The version's own Service (k8s_charts/model_endpoint.py); its port maps to
                        # the filter sidecar when filtering is on.
                        "endpoints": [
                            {
                                "fqdn": {
                                    "hostname": f"{name}.{MODELS_NAMESPACE}.svc.cluster.local",
                                    "port": VLLM_PORT,
                                }
                            }
                        ]
                    },
                )
                self.service_backends[name] = api_object(
                    self,
                    f"AIServiceBackend-{name}",
                    api_version="aigateway.envoyproxy.io/v1beta1",
                    kind="AIServiceBackend",
                    metadata=cdk8s.ApiObjectMetadata(name=name, labels=labels),
                    spec={
                        "schema": {"name": "OpenAI"},
                        "backendRef": {"name": name, "kind": "Backend", "group": "gateway.envoyproxy.io"},
                    },
                )
        self.routes = {
            model.id: api_object(
                self,
                f"AIGatewayRoute-{model.id}",
                api_version="aigateway.envoyproxy.io/v1beta1",
                kind="AIGatewayRoute",
                metadata=cdk8s.ApiObjectMetadata(name=model.id, labels=labels),
                spec={
                    "parentRefs": [
                        {"name": GATEWAY_NAME, "kind": "Gateway", "group": "gateway.networking.k8s.io"}
                    ],
                    "rules": [route_rule(model)],
                },
            )
            for model in models
        }
        self.network_policy = self._network_policy(models, source_cidrs, labels)

    def _network_policy(
        self, models: list[ModelConfig], source_cidrs: list[str], labels: dict[str, str]
    ) -> cdk8s.ApiObject:
        served = sorted({serving_port(model) for model in models})
        metrics = [{"protocol": "TCP", "port": port} for port in (STATS_PORT, EXTPROC_METRICS_PORT)]
        return api_object(
            self,
            "NetworkPolicy",
            api_version="networking.k8s.io/v1",
            kind="NetworkPolicy",
            metadata=cdk8s.ApiObjectMetadata(name=ENVOY_SERVICE, labels=labels),
            spec={
                "podSelector": {"matchLabels": ENVOY_POD_LABELS},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    # The ALB (requests and health checks) and the AMP managed scraper, from their subnets.
                    {
                        "from": [{"ipBlock": {"cidr": cidr}} for cidr in source_cidrs],
                        "ports": [
                            {"protocol": "TCP", "port": LISTENER_PORT},
                            {"protocol": "TCP", "port": READINESS_PORT},
                            *metrics,
                        ],
                    },
                    {
                        "from": [
                            {"namespaceSelector": {"matchLabels": {METRICS_SCRAPER_NAMESPACE_LABEL: "true"}}}
                        ],
                        "ports": metrics,
                    },
                ],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                                },
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    },
                    # xDS configuration from the Envoy Gateway controller.
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": ENVOY_GATEWAY_NAMESPACE}
                                }
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": XDS_PORT}],
                    },
                    # The model pods, on the port their Service targets (vLLM or the filter sidecar).
                    {
                        "to": [{"podSelector": {"matchLabels": {APP_NAME_LABEL: VLLM_APP_NAME}}}],
                        "ports": [{"protocol": "TCP", "port": port} for port in served],
                    },
                ],
            },
        )
