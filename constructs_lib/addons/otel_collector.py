"""OpenTelemetry Collector (contrib distribution, as ADOT): OTLP traces from vLLM to AWS X-Ray, sampled."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from constructs_lib.addons.helm import SYSTEM_NODES, HelmAddon, HelmSource
from constructs_lib.nag import acknowledge
from contract.kubernetes import OBSERVABILITY_NAMESPACE
from contract.telemetry import OTEL_COLLECTOR_NAME, OTLP_GRPC_PORT, OTLP_HTTP_PORT
from k8s_charts.images import docker_hub_image

SOURCE = HelmSource(
    chart="opentelemetry-collector",
    repository="https://open-telemetry.github.io/opentelemetry-helm-charts",
    version="0.140.0",
    namespace=OBSERVABILITY_NAMESPACE,
    release=OTEL_COLLECTOR_NAME,
)
IMAGE = "otel/opentelemetry-collector-contrib"  # the awsxray exporter lives in contrib
XRAY_ACTIONS = [
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
]
UNUSED_RECEIVER_PORTS = ("jaeger-compact", "jaeger-thrift", "jaeger-grpc", "zipkin", "metrics")


def collector_config(*, region: str, sampling_ratio: float) -> dict[str, Any]:
    """Merged over the chart's default config; ``None`` removes a default component."""
    return {
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"${{env:MY_POD_IP}}:{OTLP_GRPC_PORT}"},
                    "http": {"endpoint": f"${{env:MY_POD_IP}}:{OTLP_HTTP_PORT}"},
                }
            },
            "jaeger": None,
            "zipkin": None,
            "prometheus": None,
        },
        "processors": {
            "memory_limiter": {"check_interval": "5s", "limit_percentage": 80, "spike_limit_percentage": 25},
            # Head sampling by trace id: every span of a kept trace is kept.
            "probabilistic_sampler": {"sampling_percentage": round(sampling_ratio * 100, 4)},
            "batch": {},
        },
        "exporters": {"awsxray": {"region": region}, "debug": None},
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "probabilistic_sampler", "batch"],
                    "exporters": ["awsxray"],
                },
                "metrics": None,
                "logs": None,
            }
        },
    }


def values(*, region: str, sampling_ratio: float, image_mirror: str = "") -> dict[str, Any]:
    return {
        "mode": "deployment",
        "replicaCount": 2,
        "fullnameOverride": OTEL_COLLECTOR_NAME,
        "image": {"repository": docker_hub_image(IMAGE, mirror=image_mirror)},
        "command": {"name": "otelcol-contrib"},
        "serviceAccount": {"create": True, "name": OTEL_COLLECTOR_NAME},
        "nodeSelector": SYSTEM_NODES,
        "ports": {name: {"enabled": False} for name in UNUSED_RECEIVER_PORTS},
        "config": collector_config(region=region, sampling_ratio=sampling_ratio),
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
    }


class OtelCollector(HelmAddon):
    """Exposes ``chart`` and ``identity``.

    :param sampling_ratio: share of traces kept (0..1), from config.observability.
    :param image_mirror: the stage's Docker Hub pull-through cache prefix (k8s_charts/images.py).
        Default: empty, the image comes from Docker Hub.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster: eks.ICluster,
        sampling_ratio: float,
        image_mirror: str = "",
    ) -> None:
        super().__init__(scope, id_, source=SOURCE)
        identity = self._pod_identity(
            cluster_name=cluster.cluster_name,
            service_account=OTEL_COLLECTOR_NAME,
            statements=[iam.PolicyStatement(sid="SendTraces", actions=XRAY_ACTIONS, resources=["*"])],
        )
        acknowledge(
            identity.role,
            "AwsSolutions-IAM5[Resource::*]",
            reason="X-Ray PutTraceSegments, PutTelemetryRecords and the sampling reads support no "
            "resource-level permissions.",
        )
        self._install(
            cluster=cluster,
            values=values(
                region=Stack.of(self).region, sampling_ratio=sampling_ratio, image_mirror=image_mirror
            ),
        )
