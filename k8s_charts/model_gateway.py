"""`model` routing: Envoy AI Gateway behind the ALB routes on the OpenAI body's `model`.

Only in stages with `ingress.routing: model`. Objects, all in namespace `models` (Envoy Gateway
runs the proxy in the Gateway's namespace, `deploy.type: GatewayNamespace`, constructs_lib/addons/
envoy_gateway.py), checked against Envoy Gateway v1.8.3 and Envoy AI Gateway v1.1.0:

- EnvoyProxy: the data plane's Deployment (2+ replicas on the system nodes, PDB), a ClusterIP
  Service with a fixed name (the ALB's target), and a drain as long as the longest request.
- Gateway (HTTP listener) and a ClientTrafficPolicy raising the 32 KiB request buffer: the gateway
  reads the whole body to find `model`.
- Per model version: a headless Service (`<instance>-pods`, the ready pods by DNS), an Envoy Gateway
  Backend naming it (so Envoy sees each pod) and an AIServiceBackend (schema OpenAI). AI Gateway
  v1.1.0 allows one InferencePool per rule and no weights between pools, so weighted versions need
  AIServiceBackends (api/v1alpha1/ai_gateway_route.go), and an AIServiceBackend must name a Backend,
  not a Service (api/v1beta1/ai_service_backend.go:66).
- A BackendTrafficPolicy on the Gateway: least-request choice of pod, a fixed DNS refresh, OpenAI's
  JSON for the key check's 401.
- A SecurityPolicy on the Gateway: the API key (`auth: api-key`) checked once, at the edge, on every
  route including `GET /v1/models`; the model pods do not check it in this mode (stage_charts.py).
- Per model: an AIGatewayRoute with one rule matching `x-ai-eg-model` (filled from the body's
  `model`) to its versions' backends, weighted as in config, and the HTTPRouteFilter its generated
  catch-all rule answers with: OpenAI's `model_not_found` error as JSON instead of AI Gateway's text.
- A NetworkPolicy for the Envoy pods: the ALB and scraper subnets in; DNS, the xDS server and the
  model pods out.
"""

from __future__ import annotations

import json
from typing import Any

import cdk8s
from constructs import Construct

from config.serving import ModelConfig
from contract.kubernetes import (
    APP_NAME_LABEL,
    MODELS_NAMESPACE,
    NODE_GROUP_LABEL,
    VLLM_APP_NAME,
    instance_name,
    pods_service_name,
    selector_labels,
)
from contract.serving import StageValues
from k8s_charts.api_object import api_object
from k8s_charts.filter_sidecar import FILTER_PORT
from k8s_charts.images import docker_hub_image
from k8s_charts.network_policy_rules import DNS_EGRESS, from_cidrs, from_metrics_collectors
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
# OpenAI's answer to a missing or wrong key (no `%`: the body is an Envoy format string).
INVALID_API_KEY_BODY = json.dumps(
    {
        "error": {
            "message": "Incorrect API key provided. Send it as `Authorization: Bearer <key>`.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    },
    separators=(",", ":"),
)
LOAD_BALANCER = "LeastRequest"  # Envoy Gateway v1.8.3 BackendTrafficPolicy loadBalancer.type
DNS_REFRESH_SECONDS = 5
"""How often Envoy re-resolves a version's headless Service (Envoy Gateway's default: 30 s, or the TTL)."""
MODEL_HEADER = "x-ai-eg-model"  # AI Gateway fills it from the request body's `model`
# AI Gateway ends each generated HTTPRoute in a rule `route-not-found` whose HTTPRouteFilter, named
# this prefix + "-" + the AIGatewayRoute's name, answers 404 in plain text; the controller creates that
# filter only when it is missing and never updates it (internal/controller/ai_gateway_route.go:36,
# 113-115, 165-184, 331-341 at v1.1.0), so the one this chart applies under that name is the one served.
ROUTE_NOT_FOUND_FILTER_PREFIX = "ai-eg-route-not-found-response"
# OpenAI's error for an unknown model. Envoy Gateway makes a direct response's body an Envoy format
# string (internal/xds/translator/route.go buildXdsDirectResponseAction: body_format), so
# %REQ(x-ai-eg-model):N% writes the body's `model`, cut to N characters; the format does not
# JSON-escape it, so a name with `"` or `\` gives that client an unparsable body (still a 404).
MODEL_NAME_ECHO_MAX = 128
MODEL_NOT_FOUND_BODY = json.dumps(
    {
        "error": {
            "message": f"The model `%REQ({MODEL_HEADER}):{MODEL_NAME_ECHO_MAX}%` does not exist or you do "
            "not have access to it.",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    },
    separators=(",", ":"),
)
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


def service_dns_name(service: str) -> str:
    return f"{service}.{MODELS_NAMESPACE}.svc.cluster.local"


def route_not_found_filter_name(route_name: str) -> str:
    """The HTTPRouteFilter AI Gateway's catch-all rule of AIGatewayRoute `route_name` references."""
    return f"{ROUTE_NOT_FOUND_FILTER_PREFIX}-{route_name}"


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


def gateway_policy(
    scope: Construct, kind: str, labels: dict[str, str], spec: dict[str, Any]
) -> cdk8s.ApiObject:
    """An Envoy Gateway policy attached to the Gateway, so it applies to every route on it."""
    return api_object(
        scope,
        kind,
        api_version="gateway.envoyproxy.io/v1alpha1",
        kind=kind,
        metadata=cdk8s.ApiObjectMetadata(name=GATEWAY_NAME, labels=labels),
        spec={
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY_NAME}],
            **spec,
        },
    )


class ModelGatewayChart(cdk8s.Chart):
    """Props:
    models: the registry (one AIGatewayRoute per model, one backend per version).
    values: deploy-time values (the Docker Hub pull-through cache prefix).
    source_cidrs: the ALB's and the AMP scraper's subnets (config.subnets.load_balancer_source_cidrs).
    scraper_cidrs: the AMP scraper's (edge) subnets, the only ones admitted to the metrics ports: an
        internet-facing ALB's public subnets reach the listener and readiness ports only.
    api_key_secret: the Secret (k8s_charts/api_key.py) whose one entry is the key every request on the
        Gateway must carry as `Authorization: Bearer <key>`.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        models: list[ModelConfig],
        values: StageValues,
        source_cidrs: list[str],
        scraper_cidrs: list[str],
        api_key_secret: str,
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
        self.client_traffic_policy = gateway_policy(
            self,
            "ClientTrafficPolicy",
            labels,
            {
                "connection": {"bufferLimit": REQUEST_BUFFER_LIMIT},
            },
        )
        self.security_policy = gateway_policy(
            self,
            "SecurityPolicy",
            labels,
            {
                # On the Gateway: every route on it, AI Gateway's catch-alls included, so also the
                # `/v1/models` list its ext_proc answers (after this filter: it sorts before ext_proc).
                "apiKeyAuth": {
                    # Each entry of the Secret is a client id -> key; ours has one.
                    "credentialRefs": [{"group": "", "kind": "Secret", "name": api_key_secret}],
                    # Envoy's api_key_auth drops a leading "Bearer " from the header's value.
                    "extractFrom": [{"headers": ["Authorization"]}],
                    # The key stops here: the model pods no longer check it in this mode.
                    "sanitize": True,
                },
            },
        )
        self.backend_traffic_policy = gateway_policy(
            self,
            "BackendTrafficPolicy",
            labels,
            {
                # On the Gateway, so on every rule AI Gateway generates from our routes.
                # Within a version (a locality weighted by its canary weight), the pod with fewer
                # requests in flight of two picked at random. Envoy Gateway's default is the same
                # (cluster.go: no loadBalancer -> least_request); set so a default change shows here.
                "loadBalancer": {"type": LOAD_BALANCER},
                # A fixed refresh: pods leave the pool within it (plus CoreDNS's cache), before they stop.
                "dns": {"dnsRefreshRate": f"{DNS_REFRESH_SECONDS}s", "respectDnsTtl": False},
                # The key check's own 401 (Envoy-generated, so `Local`) in OpenAI's shape.
                "responseOverride": [
                    {
                        "match": {"statusCodes": [{"type": "Value", "value": 401}]},
                        "source": "Local",
                        "response": {
                            "contentType": "application/json",
                            "body": {"type": "Inline", "inline": INVALID_API_KEY_BODY},
                        },
                    }
                ],
            },
        )
        self.pods_services: dict[str, cdk8s.ApiObject] = {}
        self.backends: dict[str, cdk8s.ApiObject] = {}
        self.service_backends: dict[str, cdk8s.ApiObject] = {}
        for model in models:
            for version in model.versions:
                name = instance_name(model.id, version.name)
                pods = pods_service_name(model.id, version.name)
                port = serving_port(model)
                self.pods_services[name] = api_object(
                    self,
                    f"PodsService-{name}",
                    api_version="v1",
                    kind="Service",
                    metadata=cdk8s.ApiObjectMetadata(name=pods, labels=labels),
                    spec={
                        # Headless: its DNS name resolves to each ready pod's address, no VIP.
                        "clusterIP": "None",
                        "publishNotReadyAddresses": False,
                        "selector": selector_labels(model.id, version.name),
                        "ports": [{"name": "serving", "port": port, "targetPort": port, "protocol": "TCP"}],
                    },
                )
                self.backends[name] = api_object(
                    self,
                    f"Backend-{name}",
                    api_version="gateway.envoyproxy.io/v1alpha1",
                    kind="Backend",
                    metadata=cdk8s.ApiObjectMetadata(name=name, labels=labels),
                    spec={
                        # Envoy Gateway makes an FQDN backend a STRICT_DNS cluster: one host per
                        # address, so one per ready pod. Envoy connects to the pod directly, so the
                        # port is the pod's: the filter sidecar's when filtering is on.
                        "endpoints": [{"fqdn": {"hostname": service_dns_name(pods), "port": port}}]
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
        # Before the routes: applied first, so the AI Gateway controller finds them and creates none.
        self.not_found_filters = {
            model.id: api_object(
                self,
                f"RouteNotFound-{model.id}",
                api_version="gateway.envoyproxy.io/v1alpha1",
                kind="HTTPRouteFilter",
                metadata=cdk8s.ApiObjectMetadata(name=route_not_found_filter_name(model.id), labels=labels),
                spec={
                    "directResponse": {
                        "statusCode": 404,
                        "contentType": "application/json",
                        "body": {"type": "Inline", "inline": MODEL_NOT_FOUND_BODY},
                    }
                },
            )
            for model in models
        }
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
        self.network_policy = self._network_policy(models, source_cidrs, scraper_cidrs, labels)

    def _network_policy(
        self,
        models: list[ModelConfig],
        source_cidrs: list[str],
        scraper_cidrs: list[str],
        labels: dict[str, str],
    ) -> cdk8s.ApiObject:
        served = sorted({serving_port(model) for model in models})
        metrics = [{"protocol": "TCP", "port": port} for port in (STATS_PORT, EXTPROC_METRICS_PORT)]
        listener = [{"protocol": "TCP", "port": port} for port in (LISTENER_PORT, READINESS_PORT)]
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
                    # The ALB (requests and health checks), from its subnets (as the model pods admit
                    # it in the other modes, the scraper's included).
                    from_cidrs(source_cidrs, listener),
                    # The AMP managed scraper, from the edge subnets only: not an internet-facing ALB's
                    # public subnets, which have no business with Envoy's stats or ext_proc's metrics.
                    from_cidrs(scraper_cidrs, metrics),
                    from_metrics_collectors(metrics),
                ],
                "egress": [
                    DNS_EGRESS,
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
