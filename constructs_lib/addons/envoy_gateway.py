"""Envoy Gateway and Envoy AI Gateway: the controllers behind `ingress.routing: model`.

Pins: Envoy Gateway v1.8.3 (chart `gateway-helm`, its `crds` subchart carries the Gateway API and
Envoy Gateway CRDs) and Envoy AI Gateway v1.1.0 (`ai-gateway-crds-helm`, then `ai-gateway-helm`),
all published as OCI charts on Docker Hub (AI Gateway docs "Installation"; Envoy Gateway docs
"Install with Helm"). AI Gateway v1.1.0's release notes name Envoy Gateway v1.8.1 as tested and
its docs 1.8.1 as the minimum; v1.8.3 is the newest patch of that minor. aws-cdk-lib 2.275's kubectl
handler pulls `oci://` charts with `helm pull <repository> --version <version>` (custom-resource-
handlers/.../kubectl-handler/helm/__init__.py), so `repository` is the chart's full OCI address.

The Envoy Gateway values are AI Gateway's required base (manifests/envoy-gateway-values.yaml at
v1.1.0: Backend API, EnvoyPatchPolicy, the extension manager hooks and the AI Gateway controller's
address) plus: the proxy runs in the Gateway's namespace (`models`, so the ALB Ingress there can
name its Service), and the controller watches only that namespace (namespaced RBAC).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from constructs_lib.addons.helm import SYSTEM_NODES, HelmAddon, HelmSource
from contract.kubernetes import MODELS_NAMESPACE
from k8s_charts.images import docker_hub_image
from k8s_charts.model_gateway import ENVOY_GATEWAY_NAMESPACE, GATEWAY_CLASS

VERSION = "v1.8.3"
AI_GATEWAY_VERSION = "v1.1.0"
AI_GATEWAY_NAMESPACE = "envoy-ai-gateway-system"
CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"
SOURCE = HelmSource(
    chart="gateway-helm",
    repository="oci://docker.io/envoyproxy/gateway-helm",
    version=VERSION,
    namespace=ENVOY_GATEWAY_NAMESPACE,
    release="eg",
)
AI_GATEWAY_CRDS_SOURCE = HelmSource(
    chart="ai-gateway-crds-helm",
    repository="oci://docker.io/envoyproxy/ai-gateway-crds-helm",
    version=AI_GATEWAY_VERSION,
    namespace=AI_GATEWAY_NAMESPACE,
    release="aieg-crd",
)
AI_GATEWAY_SOURCE = HelmSource(
    chart="ai-gateway-helm",
    repository="oci://docker.io/envoyproxy/ai-gateway-helm",
    version=AI_GATEWAY_VERSION,
    namespace=AI_GATEWAY_NAMESPACE,
    release="aieg",
)
# ai-gateway-helm: controller.fullnameOverride and the grpc port of controller.service.ports.
AI_GATEWAY_EXTENSION_HOST = f"ai-gateway-controller.{AI_GATEWAY_NAMESPACE}.svc.cluster.local"
AI_GATEWAY_EXTENSION_PORT = 1063
REPLICAS = 2
# Both controllers' pods pass `restricted` (the charts' default security contexts at these versions:
# non-root 65532, no capabilities, RuntimeDefault seccomp); created by constructs_lib/addons/namespaces.py.
NAMESPACES = {ENVOY_GATEWAY_NAMESPACE: "restricted", AI_GATEWAY_NAMESPACE: "restricted"}


def envoy_gateway_values(*, image_mirror: str = "") -> dict[str, Any]:
    """:param image_mirror: the stage's Docker Hub pull-through cache prefix; empty: Docker Hub."""
    image = docker_hub_image(f"envoyproxy/gateway:{VERSION}", mirror=image_mirror)
    repository, _, tag = image.rpartition(":")
    return {
        "config": {
            "envoyGateway": {
                "gateway": {"controllerName": CONTROLLER_NAME},
                "provider": {
                    "type": "Kubernetes",
                    "kubernetes": {
                        "deploy": {"type": "GatewayNamespace"},
                        "watch": {"type": "Namespaces", "namespaces": [MODELS_NAMESPACE]},
                    },
                },
                "extensionApis": {"enableEnvoyPatchPolicy": True, "enableBackend": True},
                "extensionManager": {
                    "hooks": {
                        "xdsTranslator": {
                            "translation": {
                                kind: {"includeAll": True}
                                for kind in ("listener", "route", "cluster", "secret")
                            },
                            "post": ["Translation", "Cluster", "Route"],
                        }
                    },
                    "service": {
                        "fqdn": {"hostname": AI_GATEWAY_EXTENSION_HOST, "port": AI_GATEWAY_EXTENSION_PORT}
                    },
                },
            }
        },
        "deployment": {
            "replicas": REPLICAS,
            "envoyGateway": {"image": {"repository": repository, "tag": tag}},
            "pod": {"nodeSelector": SYSTEM_NODES},
        },
        "podDisruptionBudget": {"minAvailable": 1},
        "certgen": {"job": {"nodeSelector": SYSTEM_NODES}},
    }


def ai_gateway_values(*, image_mirror: str = "") -> dict[str, Any]:
    def repository(name: str) -> str:
        return docker_hub_image(f"envoyproxy/{name}", mirror=image_mirror)

    return {
        # The chart's tag default is its appVersion; pinned explicitly so a chart bump shows here.
        "extProc": {"image": {"repository": repository("ai-gateway-extproc"), "tag": AI_GATEWAY_VERSION}},
        "controller": {
            "image": {"repository": repository("ai-gateway-controller"), "tag": AI_GATEWAY_VERSION},
            "replicaCount": REPLICAS,
            "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
            "nodeSelector": SYSTEM_NODES,
        },
        "envoyGateway": {"namespace": ENVOY_GATEWAY_NAMESPACE},
    }


def gateway_class() -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": GATEWAY_CLASS},
        "spec": {"controllerName": CONTROLLER_NAME},
    }


class GatewayRelease(HelmAddon):
    """One of the gateway's Helm releases as an add-on (none of them calls AWS, so no identity).

    The release's construct id is ``Default``, so it keeps the logical id it had when it was created
    directly under ``EnvoyAiGateway`` with this add-on's id.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster: eks.ICluster,
        source: HelmSource,
        values: dict[str, Any],
    ) -> None:
        super().__init__(scope, id_, source=source)
        self._install(cluster=cluster, values=values, chart_id="Default")


class EnvoyAiGateway(Construct):
    """Exposes ``envoy_gateway``, ``ai_gateway_crds``, ``ai_gateway`` (Helm releases, each the
    ``chart`` of a ``GatewayRelease`` add-on) and ``gateway_class`` (the GatewayClass the serving
    stack's Gateway names). The platform's namespaces (``NAMESPACES``, labelled there) precede the
    releases like any add-on's.

    :param image_mirror: the stage's Docker Hub pull-through cache prefix. Default: none.
    """

    def __init__(self, scope: Construct, id_: str, *, cluster: eks.ICluster, image_mirror: str = "") -> None:
        super().__init__(scope, id_)
        self.envoy_gateway = GatewayRelease(
            self,
            "EnvoyGateway",
            cluster=cluster,
            source=SOURCE,
            values=envoy_gateway_values(image_mirror=image_mirror),
        ).chart
        self.ai_gateway_crds = GatewayRelease(
            self, "AiGatewayCrds", cluster=cluster, source=AI_GATEWAY_CRDS_SOURCE, values={}
        ).chart
        self.ai_gateway = GatewayRelease(
            self,
            "AiGateway",
            cluster=cluster,
            source=AI_GATEWAY_SOURCE,
            values=ai_gateway_values(image_mirror=image_mirror),
        ).chart
        # AI Gateway's controller watches Envoy Gateway's resources and its own CRDs.
        self.ai_gateway_crds.node.add_dependency(self.envoy_gateway)
        self.ai_gateway.node.add_dependency(self.ai_gateway_crds)
        self.gateway_class = eks.KubernetesManifest(
            self, "GatewayClass", cluster=cluster, manifest=[gateway_class()], overwrite=True
        )
        # The GatewayClass CRD comes with Envoy Gateway's chart.
        self.gateway_class.node.add_dependency(self.envoy_gateway)
