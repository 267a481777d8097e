"""`ingress.routing`: defaults and refusals, and the `model` mode's gateway objects and ALB wiring."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from config import ConfigError
from constructs_lib.addons.envoy_gateway import gateway_class
from contract.kubernetes import instance_name
from k8s_charts import model_gateway as gw
from k8s_charts.filter_sidecar import FILTER_PORT
from k8s_charts.model_gateway import ModelGatewayChart
from k8s_charts.vllm_args import VLLM_PORT
from tests.compliance.test_k8s_schemas import validate
from tests.templates import chart_manifests, of_kind
from tests.unit.charts.helpers import charts_for, stage_config, stage_data

ALB = "alb.ingress.kubernetes.io"


def _model_stage(**ingress: Any) -> dict[str, Any]:
    data = stage_data("staging")
    data["ingress"].update(ingress)
    return data


def _gateway(data: dict[str, Any] | None = None) -> ModelGatewayChart:
    chart = charts_for(stage_config(data or _model_stage(), "staging")).gateway
    assert isinstance(chart, ModelGatewayChart)
    return chart


@pytest.mark.parametrize(
    ("ingress", "expected"),
    [
        ({"scheme": "internal"}, "header"),
        (
            {
                "domain": "llm.example.com",
                "certificate_arn": "arn:aws:acm:us-east-1:222222222222:certificate/"
                "00000000-0000-4000-8000-000000000000",
            },
            "host",
        ),
    ],
)
def test_the_default_mode_is_what_the_stage_had_before(ingress: dict[str, Any], expected: str) -> None:
    data = stage_data("staging")
    data["ingress"] = ingress
    assert stage_config(data, "staging").ingress.routing_mode == expected


@pytest.mark.parametrize(
    ("ingress", "message"),
    [
        ({"routing": "host"}, "ingress.routing 'host' needs ingress.domain"),
        ({"routing": "model", "auth": "none"}, "ingress.routing 'model' with ingress.auth 'none'"),
        (
            {"routing": "model", "scheme": "internet-facing"},
            "needs ingress.domain and ingress.certificate_arn",
        ),
        (
            {
                "routing": "header",
                "domain": "llm.example.com",
                "certificate_arn": "arn:aws:acm:us-east-1:222222222222:certificate/"
                "00000000-0000-4000-8000-000000000000",
            },
            "ingress.routing 'header' with ingress.domain",
        ),
    ],
)
def test_a_mode_without_what_it_needs_is_refused(ingress: dict[str, Any], message: str) -> None:
    data = stage_data("staging")
    data["ingress"] = {"scheme": "internal", **ingress}
    with pytest.raises(ConfigError, match=message):
        stage_config(data, "staging")


def test_only_model_mode_has_a_gateway() -> None:
    assert charts_for(stage_config(stage_data("dev"), "dev")).gateway is None
    header = _model_stage(routing="header")
    assert charts_for(stage_config(header, "staging")).gateway is None
    assert _gateway() is not None


def test_one_rule_per_model_matches_the_body_model_and_splits_by_the_config_weights() -> None:
    config = stage_config(_model_stage(), "staging")
    routes = {m["metadata"]["name"]: m for m in chart_manifests(_gateway()) if m["kind"] == "AIGatewayRoute"}
    assert set(routes) == {model.id for model in config.models}
    for model in config.models:
        (rule,) = routes[model.id]["spec"]["rules"]
        assert rule["matches"] == [
            {
                "headers": [
                    {"type": "Exact", "name": "x-ai-eg-model", "value": model.versions[0].served_model_name}
                ]
            }
        ]
        assert rule["backendRefs"] == [
            {"name": instance_name(model.id, v.name), "weight": v.weight} for v in model.versions
        ]
        # AI Gateway's 60 s default would cut long streams.
        assert int(rule["timeouts"]["request"].rstrip("s")) >= max(
            v.max_request_seconds for v in model.versions
        )
    canary = routes["llama-3-1-8b"]["spec"]["rules"][0]["backendRefs"]
    assert [ref["weight"] for ref in canary] == [90, 10]


def test_each_version_is_an_openai_backend_reaching_its_own_service() -> None:
    objects = chart_manifests(_gateway())
    backends = {m["metadata"]["name"]: m for m in objects if m["kind"] == "Backend"}
    service_backends = {m["metadata"]["name"]: m for m in objects if m["kind"] == "AIServiceBackend"}
    assert set(backends) == set(service_backends)
    assert backends
    for name, backend in backends.items():
        assert backend["spec"]["endpoints"] == [
            {"fqdn": {"hostname": f"{name}.models.svc.cluster.local", "port": VLLM_PORT}}
        ]
        assert service_backends[name]["spec"] == {
            "schema": {"name": "OpenAI"},
            "backendRef": {"name": name, "kind": "Backend", "group": "gateway.envoyproxy.io"},
        }


def test_the_data_plane_is_redundant_on_system_nodes_and_drains_longer_than_any_request() -> None:
    config = stage_config(_model_stage(), "staging")
    spec = of_kind(_gateway(), "EnvoyProxy")["spec"]
    kubernetes = spec["provider"]["kubernetes"]
    assert kubernetes["envoyDeployment"]["replicas"] >= 2
    assert kubernetes["envoyDeployment"]["pod"]["nodeSelector"] == {"llm-inference/node-group": "system"}
    assert kubernetes["envoyPDB"] == {"minAvailable": 1}
    assert kubernetes["envoyService"] == {"name": gw.ENVOY_SERVICE, "type": "ClusterIP"}
    longest = max(v.max_request_seconds for m in config.models for v in m.versions)
    assert int(spec["shutdown"]["drainTimeout"].rstrip("s")) > longest
    gateway = of_kind(_gateway(), "Gateway")["spec"]
    assert gateway["gatewayClassName"] == gateway_class()["metadata"]["name"]
    assert gateway["listeners"] == [{"name": "http", "protocol": "HTTP", "port": gw.LISTENER_PORT}]


def test_the_alb_sends_only_the_openai_api_to_the_gateway_service() -> None:
    ingress = of_kind(charts_for(stage_config(_model_stage(), "staging")).ingress, "Ingress")  # type: ignore[arg-type]
    assert ingress["spec"]["rules"] == [
        {
            "http": {
                "paths": [
                    {
                        "path": "/v1/*",
                        "pathType": "ImplementationSpecific",
                        "backend": {
                            "service": {"name": gw.ENVOY_SERVICE, "port": {"number": gw.LISTENER_PORT}}
                        },
                    }
                ]
            }
        }
    ]
    annotations = ingress["metadata"]["annotations"]
    assert not [key for key in annotations if key.startswith((f"{ALB}/actions.", f"{ALB}/conditions."))]
    assert annotations[f"{ALB}/healthcheck-port"] == str(gw.READINESS_PORT)
    assert annotations[f"{ALB}/healthcheck-path"] == gw.READINESS_PATH


def test_with_a_domain_the_one_host_is_the_domain_over_tls() -> None:
    data = _model_stage(
        domain="llm.example.com",
        certificate_arn="arn:aws:acm:us-east-1:222222222222:certificate/00000000-0000-4000-8000-000000000000",
    )
    data.pop("account", None)
    data.pop("region", None)
    ingress = of_kind(charts_for(stage_config(data, "staging")).ingress, "Ingress")  # type: ignore[arg-type]
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == ["llm.example.com"]
    assert ingress["spec"]["tls"] == [{"hosts": ["llm.example.com"]}]


@pytest.mark.parametrize("filtered", [False, True])
def test_model_pods_admit_the_gateway_on_the_port_their_service_targets(filtered: bool) -> None:
    data = _model_stage()
    if filtered:
        data["models"][0]["filtering"] = {"enabled": True}
    config = stage_config(data, "staging")
    model = config.models[0]
    chart = charts_for(config).endpoints[instance_name(model.id, model.versions[0].name)]
    rules = of_kind(chart, "NetworkPolicy")["spec"]["ingress"]
    port = FILTER_PORT if filtered else VLLM_PORT
    assert {
        "from": [{"podSelector": {"matchLabels": gw.ENVOY_POD_LABELS}}],
        "ports": [{"protocol": "TCP", "port": port}],
    } in rules
    egress = of_kind(_gateway(data), "NetworkPolicy")["spec"]["egress"]
    assert {"protocol": "TCP", "port": port} in egress[-1]["ports"]


def test_the_gateway_policy_admits_only_the_alb_and_scraper_subnets() -> None:
    policy = of_kind(_gateway(), "NetworkPolicy")["spec"]
    assert policy["podSelector"] == {"matchLabels": gw.ENVOY_POD_LABELS}
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    sources = [peer for rule in policy["ingress"] for peer in rule["from"]]
    assert all("ipBlock" in peer or "namespaceSelector" in peer for peer in sources)
    assert all(peer["ipBlock"]["cidr"] != "0.0.0.0/0" for peer in sources if "ipBlock" in peer)


def test_every_gateway_object_and_the_gateway_class_validate_against_the_pinned_crds() -> None:
    objects = [*chart_manifests(_gateway()), gateway_class()]
    assert {m["kind"] for m in objects} >= {
        "EnvoyProxy",
        "Gateway",
        "GatewayClass",
        "ClientTrafficPolicy",
        "Backend",
        "AIServiceBackend",
        "AIGatewayRoute",
    }
    for manifest in objects:
        validate(manifest)


@pytest.mark.parametrize("kind", ["AIGatewayRoute", "EnvoyProxy", "Backend"])
def test_the_schemas_reject_an_unknown_field(kind: str) -> None:
    manifest = json.loads(json.dumps(next(m for m in chart_manifests(_gateway()) if m["kind"] == kind)))
    manifest["spec"]["unknownField"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate(manifest)
