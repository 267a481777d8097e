"""`ingress.routing`: defaults and refusals, and the `model` mode's gateway objects and ALB wiring."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from config import ConfigError
from config.subnets import subnet_cidrs
from constructs_lib.addons.envoy_gateway import gateway_class
from contract.kubernetes import instance_name, selector_labels
from contract.serving import API_KEY_SECRET, API_KEY_SECRET_FIELD
from k8s_charts import model_gateway as gw
from k8s_charts.filter_sidecar import API_KEY_ENV as FILTER_API_KEY_ENV
from k8s_charts.filter_sidecar import FILTER_PORT
from k8s_charts.model_gateway import ModelGatewayChart
from k8s_charts.shutdown import PROPAGATION_SECONDS
from k8s_charts.vllm_args import VLLM_PORT
from tests.compliance.test_k8s_schemas import SCHEMAS, validate
from tests.synth import SynthResult
from tests.templates import chart_manifests, of_kind, resources
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


@pytest.mark.parametrize("filtered", [False, True])
def test_each_version_is_an_openai_backend_reaching_each_ready_pod_on_its_serving_port(
    filtered: bool,
) -> None:
    data = _model_stage()
    if filtered:
        data["models"][0]["filtering"] = {"enabled": True}
    config = stage_config(data, "staging")
    objects = chart_manifests(_gateway(data))
    backends = {m["metadata"]["name"]: m for m in objects if m["kind"] == "Backend"}
    service_backends = {m["metadata"]["name"]: m for m in objects if m["kind"] == "AIServiceBackend"}
    services = {m["metadata"]["name"]: m for m in objects if m["kind"] == "Service"}
    versions = [(model, version) for model in config.models for version in model.versions]
    assert set(backends) == set(service_backends) == {instance_name(m.id, v.name) for m, v in versions}
    for model, version in versions:
        name = instance_name(model.id, version.name)
        port = FILTER_PORT if filtered and model is config.models[0] else VLLM_PORT
        # Headless (no VIP, so no per-connection kube-proxy choice): DNS answers each ready pod.
        service = services[f"{name}-pods"]["spec"]
        assert service["clusterIP"] == "None"
        assert service["publishNotReadyAddresses"] is False
        assert service["selector"] == selector_labels(model.id, version.name)
        assert [(p["port"], p["targetPort"]) for p in service["ports"]] == [(port, port)]
        # Envoy connects to the pod's address itself, so the port is the pod's (the filter's if on).
        assert backends[name]["spec"]["endpoints"] == [
            {"fqdn": {"hostname": f"{name}-pods.models.svc.cluster.local", "port": port}}
        ]
        assert service_backends[name]["spec"] == {
            "schema": {"name": "OpenAI"},
            "backendRef": {"name": name, "kind": "Backend", "group": "gateway.envoyproxy.io"},
        }


def test_the_headless_service_selects_exactly_the_version_s_deployment_pods() -> None:
    config = stage_config(_model_stage(), "staging")
    charts = charts_for(config)
    services = {m["metadata"]["name"]: m for m in chart_manifests(charts.gateway) if m["kind"] == "Service"}  # type: ignore[arg-type]
    for model in config.models:
        for version in model.versions:
            name = instance_name(model.id, version.name)
            deployment = of_kind(charts.endpoints[name], "Deployment")
            assert (
                services[f"{name}-pods"]["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
            )


def test_ai_gateway_v1_1_0_refuses_a_service_as_an_ai_service_backend() -> None:
    # Why each version needs a Backend (FQDN of the headless Service), not its Service directly.
    schema = json.loads((SCHEMAS / "aigw-aiservicebackend-v1beta1.json").read_text())
    backend_ref = schema["properties"]["spec"]["properties"]["backendRef"]
    rules = [rule["rule"] for rule in backend_ref["x-kubernetes-validations"]]
    assert any("self.kind == 'Backend'" in rule and "gateway.envoyproxy.io" in rule for rule in rules)


def test_replicas_are_chosen_by_least_request_within_each_weighted_version() -> None:
    policy = of_kind(_gateway(), "BackendTrafficPolicy")["spec"]
    assert policy["targetRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gw.GATEWAY_NAME}
    ]
    assert policy["loadBalancer"] == {"type": "LeastRequest"}
    assert policy["dns"] == {"dnsRefreshRate": f"{gw.DNS_REFRESH_SECONDS}s", "respectDnsTtl": False}
    # A deleted pod leaves Envoy's hosts (its refresh + CoreDNS's 5 s record TTL) while its preStop
    # hook still serves, so no new request reaches a stopping vLLM.
    coredns_ttl = 5
    assert gw.DNS_REFRESH_SECONDS + coredns_ttl < PROPAGATION_SECONDS


def test_a_pods_service_name_longer_than_a_dns_label_is_refused_only_in_model_mode() -> None:
    data = _model_stage()
    data["models"][0]["versions"][0]["name"] = "v" * (57 - len(data["models"][0]["id"]))
    stage_config(data, "staging")  # <id>-<version> of 58 characters, -pods makes 63
    data["models"][0]["versions"][0]["name"] += "x"
    with pytest.raises(
        ConfigError, match=r"names the Service .*-pods' \(64 characters\); allowed: at most 63"
    ):
        stage_config(data, "staging")
    data["ingress"]["routing"] = "header"
    stage_config(data, "staging")


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
        "HTTPRouteFilter",
        "BackendTrafficPolicy",
        "SecurityPolicy",
        "Service",
    }
    for manifest in objects:
        validate(manifest)


@pytest.mark.parametrize(
    "kind",
    [
        "AIGatewayRoute",
        "EnvoyProxy",
        "Backend",
        "HTTPRouteFilter",
        "BackendTrafficPolicy",
        "SecurityPolicy",
        "Service",
    ],
)
def test_the_schemas_reject_an_unknown_field(kind: str) -> None:
    manifest = json.loads(json.dumps(next(m for m in chart_manifests(_gateway()) if m["kind"] == kind)))
    manifest["spec"]["unknownField"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate(manifest)


def test_an_unknown_model_gets_openai_s_json_404_from_the_catch_all_filter_ai_gateway_references() -> None:
    config = stage_config(_model_stage(), "staging")
    objects = chart_manifests(_gateway())
    filters = {m["metadata"]["name"]: m for m in objects if m["kind"] == "HTTPRouteFilter"}
    # The name AI Gateway v1.1.0 gives the catch-all rule's filter of each AIGatewayRoute.
    assert set(filters) == {f"ai-eg-route-not-found-response-{model.id}" for model in config.models}
    for manifest in filters.values():
        response = manifest["spec"]["directResponse"]
        assert response["statusCode"] == 404
        assert response["contentType"] == "application/json"
        assert response["body"]["type"] == "Inline"
        # Envoy substitutes the body's model (the header AI Gateway sets) into the format string.
        sample = response["body"]["inline"].replace("%REQ(x-ai-eg-model):128%", "gpt-x")
        assert "%" not in sample
        assert json.loads(sample) == {
            "error": {
                "message": "The model `gpt-x` does not exist or you do not have access to it.",
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_found",
            }
        }


def test_the_catch_all_filters_are_applied_before_the_routes_so_the_controller_creates_none() -> None:
    kinds = [m["kind"] for m in chart_manifests(_gateway())]
    assert kinds.index("AIGatewayRoute") > max(i for i, kind in enumerate(kinds) if kind == "HTTPRouteFilter")


def test_every_route_on_the_gateway_checks_the_api_key_from_the_stage_secret() -> None:
    policy = of_kind(_gateway(), "SecurityPolicy")["spec"]
    # The Gateway, not a route: AI Gateway's generated routes, their catch-alls and /v1/models.
    assert policy["targetRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gw.GATEWAY_NAME}
    ]
    assert policy["apiKeyAuth"] == {
        "credentialRefs": [{"group": "", "kind": "Secret", "name": API_KEY_SECRET}],
        "extractFrom": [{"headers": ["Authorization"]}],
        "sanitize": True,
    }


def test_the_gateway_s_secret_holds_exactly_the_one_key_the_external_secret_syncs() -> None:
    # Envoy Gateway accepts every entry of a credentialRefs Secret as a key (client id -> key).
    charts = charts_for(stage_config(_model_stage(), "staging"))
    (external,) = [m for m in chart_manifests(charts.api_key) if m["kind"] == "ExternalSecret"]  # type: ignore[arg-type]
    assert external["spec"]["target"]["name"] == API_KEY_SECRET
    assert [entry["secretKey"] for entry in external["spec"]["data"]] == [API_KEY_SECRET_FIELD]
    assert "dataFrom" not in external["spec"]
    assert "template" not in external["spec"]["target"]


@pytest.mark.parametrize("filtered", [False, True])
def test_in_model_mode_the_key_is_checked_once_at_the_gateway_not_again_in_the_pods(filtered: bool) -> None:
    for routing, pods_check in (("model", False), ("header", True)):
        data = _model_stage(routing=routing)
        if filtered:
            data["models"][0]["filtering"] = {"enabled": True}
        config = stage_config(data, "staging")
        model = config.models[0]
        chart = charts_for(config).endpoints[instance_name(model.id, model.versions[0].name)]
        containers = of_kind(chart, "Deployment")["spec"]["template"]["spec"]["containers"]
        env_names = {item["name"] for container in containers for item in container.get("env", [])}
        assert ("VLLM_API_KEY" in env_names) is pods_check, routing
        if filtered:
            assert (FILTER_API_KEY_ENV in env_names) is pods_check, routing


def test_a_missing_or_wrong_key_gets_openai_s_json_401_from_the_gateway() -> None:
    (override,) = of_kind(_gateway(), "BackendTrafficPolicy")["spec"]["responseOverride"]
    assert override["match"] == {"statusCodes": [{"type": "Value", "value": 401}]}
    assert override["source"] == "Local"  # only Envoy's own 401s (the key check)
    assert override["response"]["contentType"] == "application/json"
    body = override["response"]["body"]["inline"]
    assert "%" not in body  # an Envoy format string: no operators wanted
    assert json.loads(body)["error"]["code"] == "invalid_api_key"


def test_the_gateway_chart_is_applied_after_the_api_key_chart(synth: SynthResult) -> None:
    manifests = resources(synth.templates["staging"]["Serving"], "Custom::AWSCDK-EKS-KubernetesResource")
    gateway = next(name for name in manifests if name.startswith("Chartmodelgateway"))
    api_key = next(name for name in manifests if name.startswith("Chartapikey"))
    assert api_key in manifests[gateway]["DependsOn"]


def test_internet_facing_model_mode_admits_the_public_subnets_to_the_gateway_only() -> None:
    data = _model_stage(
        scheme="internet-facing",
        domain="llm.example.com",
        certificate_arn="arn:aws:acm:us-east-1:222222222222:certificate/00000000-0000-4000-8000-000000000000",
    )
    data.pop("account", None)
    data.pop("region", None)
    config = stage_config(data, "staging")
    zones = len(config.availability_zones)
    layout = subnet_cidrs(config.network.vpc_cidr, zones)
    charts = charts_for(config)

    def admitted(policy: dict[str, Any]) -> set[str]:
        return {
            peer["ipBlock"]["cidr"]
            for rule in policy["spec"]["ingress"]
            for peer in rule["from"]
            if "ipBlock" in peer
        }

    # The ALB (public subnets) reaches the gateway, on its listener and readiness ports only...
    gateway_policy = of_kind(charts.gateway, "NetworkPolicy")  # type: ignore[arg-type]
    assert set(layout["Public"]) <= admitted(gateway_policy)
    for rule in gateway_policy["spec"]["ingress"]:
        cidrs = {peer["ipBlock"]["cidr"] for peer in rule["from"] if "ipBlock" in peer}
        if cidrs & set(layout["Public"]):
            assert [port["port"] for port in rule["ports"]] == [gw.LISTENER_PORT, gw.READINESS_PORT]
    # ...and no model pod, which then checks no key; the scraper (edge subnets) still reaches them.
    for chart in charts.endpoints.values():
        pods = admitted(of_kind(chart, "NetworkPolicy"))
        assert pods == set(layout["Edge"])
