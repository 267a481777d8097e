"""The ALB Ingress: one rule per model id, weighted forwarding across its versions, API paths only."""

from __future__ import annotations

import json
from typing import Any

import cdk8s
from constructs import Construct

from config.serving import IngressConfig, ModelConfig
from contract.kubernetes import APP_NAME_LABEL, MODELS_NAMESPACE, instance_name
from contract.serving import StageValues
from k8s_charts import model_gateway as gateway
from k8s_charts.api_object import api_object
from k8s_charts.keep_alive import ALB_IDLE_TIMEOUT_SECONDS
from k8s_charts.shutdown import shutdown_timing
from k8s_charts.vllm_args import VLLM_PORT

# The Ingress object itself; named like its namespace by choice, not by contract.
INGRESS_NAME = "models"
INGRESS_CLASS = "alb"  # created by the AWS Load Balancer Controller's Helm chart
ANNOTATION = "alb.ingress.kubernetes.io"
MODEL_ID_HEADER = "x-model-id"
# TLS 1.3 with 1.2 fallback, forward-secret ciphers only.
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
IDLE_TIMEOUT_SECONDS = ALB_IDLE_TIMEOUT_SECONDS
# The capacity planner assumes a request goes to the least busy replica; round robin (the ALB
# default) would queue behind one long generation while a neighbour sits idle.
LOAD_BALANCING_ALGORITHM = "least_outstanding_requests"
# (path, pathType): only the OpenAI API and the health check reach vLLM; /metrics and the rest
# fall through to the ALB's default 404 action.
FORWARDED_PATHS = (("/v1/*", "ImplementationSpecific"), ("/health", "Exact"))
# In `model` mode only the OpenAI API reaches the gateway (it has no route for /health).
GATEWAY_PATH = "/v1/*"


def weighted_forward_action(model: ModelConfig) -> dict[str, Any]:
    """The ALB forward action splitting a model's traffic across its versions by weight."""
    return {
        "type": "forward",
        "forwardConfig": {
            "targetGroups": [
                {
                    "serviceName": instance_name(model.id, version.name),
                    "servicePort": str(VLLM_PORT),
                    "weight": version.weight,
                }
                for version in model.versions
            ],
            # No stickiness: a canary must see its share of new requests, not of old clients.
            "targetGroupStickinessConfig": {"enabled": False},
        },
    }


def gateway_rule(ingress: IngressConfig) -> dict[str, Any]:
    """`model` routing: the OpenAI API goes to the Envoy AI Gateway Service, which reads the body."""
    rule: dict[str, Any] = {
        "http": {
            "paths": [
                {
                    "path": GATEWAY_PATH,
                    "pathType": "ImplementationSpecific",
                    "backend": {
                        "service": {"name": gateway.ENVOY_SERVICE, "port": {"number": gateway.LISTENER_PORT}}
                    },
                }
            ]
        }
    }
    return {"host": ingress.domain, **rule} if ingress.domain else rule


def header_condition(model: ModelConfig) -> list[dict[str, Any]]:
    return [
        {
            "field": "http-header",
            "httpHeaderConfig": {"httpHeaderName": MODEL_ID_HEADER, "values": [model.id]},
        }
    ]


def deregistration_delay(models: list[ModelConfig]) -> int:
    """One delay for every target group of the Ingress: the longest grace period of any version.

    The ALB completes a deregistration early once a target has no in-flight requests, so the
    long delay only matters while a long generation is still streaming.
    """
    return max(
        shutdown_timing(version.max_request_seconds).deregistration_delay
        for model in models
        for version in model.versions
    )


def _attributes(pairs: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in pairs.items())


class ModelIngressChart(cdk8s.Chart):
    """Props:
    models: the registry (one rule per model id).
    ingress: scheme, domain and certificate.
    values: deploy-time values (access-log bucket, web ACL ARN).
    stage: the stage name (access-log prefix).
    vpc_cidr: inbound range of an internal ALB's security group.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        models: list[ModelConfig],
        ingress: IngressConfig,
        values: StageValues,
        stage: str,
        vpc_cidr: str,
    ) -> None:
        super().__init__(scope, id_, namespace=MODELS_NAMESPACE, disable_resource_name_hashes=True)
        self.annotations = self._annotations(models, ingress, values, stage, vpc_cidr)
        rules = []
        for model in models if ingress.routing_mode != "model" else []:
            rule: dict[str, Any] = {
                "http": {
                    "paths": [
                        {
                            "path": path,
                            "pathType": path_type,
                            # "use-annotation" points the backend at the actions.<model-id> annotation.
                            "backend": {"service": {"name": model.id, "port": {"name": "use-annotation"}}},
                        }
                        for path, path_type in FORWARDED_PATHS
                    ]
                }
            }
            if ingress.domain:
                rule = {"host": f"{model.id}.{ingress.domain}", **rule}
            rules.append(rule)
        hosts = [f"{model.id}.{ingress.domain}" for model in models]
        if ingress.routing_mode == "model":
            rules, hosts = [gateway_rule(ingress)], [ingress.domain] if ingress.domain else []
        spec: dict[str, Any] = {"ingressClassName": INGRESS_CLASS, "rules": rules}
        if ingress.domain:
            spec["tls"] = [{"hosts": hosts}]
        self.ingress = api_object(
            self,
            "Ingress",
            api_version="networking.k8s.io/v1",
            kind="Ingress",
            metadata=cdk8s.ApiObjectMetadata(
                name=INGRESS_NAME, annotations=self.annotations, labels={APP_NAME_LABEL: "vllm-ingress"}
            ),
            spec=spec,
        )

    @staticmethod
    def _annotations(
        models: list[ModelConfig], ingress: IngressConfig, values: StageValues, stage: str, vpc_cidr: str
    ) -> dict[str, str]:
        annotations = {
            f"{ANNOTATION}/scheme": ingress.scheme,
            f"{ANNOTATION}/target-type": "ip",
            f"{ANNOTATION}/ip-address-type": "ipv4",
            f"{ANNOTATION}/backend-protocol": "HTTP",
            f"{ANNOTATION}/healthcheck-path": "/health",
            f"{ANNOTATION}/healthcheck-port": "traffic-port",
            f"{ANNOTATION}/success-codes": "200",
            f"{ANNOTATION}/target-group-attributes": _attributes(
                {
                    "deregistration_delay.timeout_seconds": str(deregistration_delay(models)),
                    "load_balancing.algorithm.type": LOAD_BALANCING_ALGORITHM,
                }
            ),
            f"{ANNOTATION}/load-balancer-attributes": _attributes(
                {
                    "access_logs.s3.enabled": "true",
                    "access_logs.s3.bucket": values.access_logs_bucket_name,
                    "access_logs.s3.prefix": f"alb/{stage}",
                    "routing.http.drop_invalid_header_fields.enabled": "true",
                    "idle_timeout.timeout_seconds": str(IDLE_TIMEOUT_SECONDS),
                }
            ),
            f"{ANNOTATION}/wafv2-acl-arn": values.web_acl_arn,
        }
        if ingress.scheme == "internal":
            annotations[f"{ANNOTATION}/inbound-cidrs"] = vpc_cidr
        if ingress.domain:
            annotations.update(
                {
                    f"{ANNOTATION}/listen-ports": json.dumps([{"HTTP": 80}, {"HTTPS": 443}]),
                    f"{ANNOTATION}/ssl-redirect": "443",
                    f"{ANNOTATION}/certificate-arn": str(ingress.certificate_arn),
                    f"{ANNOTATION}/ssl-policy": SSL_POLICY,
                }
            )
        else:
            annotations[f"{ANNOTATION}/listen-ports"] = json.dumps([{"HTTP": 80}])
        if ingress.routing_mode == "model":
            # One target group, the Envoy pods: health-checked on Envoy Gateway's readiness endpoint.
            annotations[f"{ANNOTATION}/healthcheck-path"] = gateway.READINESS_PATH
            annotations[f"{ANNOTATION}/healthcheck-port"] = str(gateway.READINESS_PORT)
            return annotations
        for model in models:
            annotations[f"{ANNOTATION}/actions.{model.id}"] = json.dumps(weighted_forward_action(model))
            if not ingress.domain:
                annotations[f"{ANNOTATION}/conditions.{model.id}"] = json.dumps(header_condition(model))
        return annotations
