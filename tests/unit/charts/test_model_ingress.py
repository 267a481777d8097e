"""The ALB Ingress: one rule per model id, weighted versions, API paths only, TLS, logs and WAF."""

from __future__ import annotations

import json
from typing import Any

from contract.serving import PLACEHOLDERS
from k8s_charts import model_gateway as gw
from k8s_charts.model_endpoint import ModelEndpointChart
from k8s_charts.model_ingress import ModelIngressChart
from tests.templates import of_kind
from tests.unit.charts.helpers import charts_for, stage_config, stage_data
from tests.variants import with_alb_routing

ALB = "alb.ingress.kubernetes.io"


def ingress_for(stage: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stage's Ingress with the ALB routing by itself: staging and prod ship `model` routing
    (tests/unit/charts/test_model_gateway.py and the shipped-prod tests below), so these tests use the
    same stage with `ingress.routing` host (prod, which has a domain) or header (staging)."""
    if data is None:
        data = with_alb_routing(stage_data(stage))
    chart = charts_for(stage_config(data, stage)).ingress
    assert isinstance(chart, ModelIngressChart)
    return of_kind(chart, "Ingress")


def alb_annotations(ingress: dict[str, Any]) -> dict[str, str]:
    result: dict[str, str] = ingress["metadata"]["annotations"]
    return result


def test_canary_weights_split_a_model_across_its_versions() -> None:
    action = json.loads(alb_annotations(ingress_for("staging"))[f"{ALB}/actions.llama-3-1-8b"])
    assert action["type"] == "forward"
    assert action["forwardConfig"]["targetGroups"] == [
        {"serviceName": "llama-3-1-8b-v1", "servicePort": "8000", "weight": 90},
        {"serviceName": "llama-3-1-8b-v2", "servicePort": "8000", "weight": 10},
    ]
    assert action["forwardConfig"]["targetGroupStickinessConfig"] == {"enabled": False}


def test_without_a_domain_each_model_is_chosen_by_the_x_model_id_header() -> None:
    ingress = ingress_for("staging")
    condition = json.loads(alb_annotations(ingress)[f"{ALB}/conditions.llama-3-1-8b"])
    assert condition == [
        {
            "field": "http-header",
            "httpHeaderConfig": {"httpHeaderName": "x-model-id", "values": ["llama-3-1-8b"]},
        }
    ]
    assert all("host" not in rule for rule in ingress["spec"]["rules"])


def test_with_a_domain_each_model_has_its_own_host_and_no_header_condition() -> None:
    ingress = ingress_for("prod")
    hosts = [rule["host"] for rule in ingress["spec"]["rules"]]
    assert hosts == ["llama-3-1-8b.llm.example.com", "llama-3-1-70b.llm.example.com"]
    assert not any(key.startswith(f"{ALB}/conditions.") for key in alb_annotations(ingress))


def test_one_rule_per_model_forwarding_only_api_and_health_paths() -> None:
    ingress = ingress_for("prod")
    assert len(ingress["spec"]["rules"]) == 2
    for rule, model in zip(ingress["spec"]["rules"], ("llama-3-1-8b", "llama-3-1-70b"), strict=True):
        paths = rule["http"]["paths"]
        assert [(path["path"], path["pathType"]) for path in paths] == [
            ("/v1/*", "ImplementationSpecific"),
            ("/health", "Exact"),
        ]
        for path in paths:
            assert path["backend"] == {"service": {"name": model, "port": {"name": "use-annotation"}}}
    assert "defaultBackend" not in ingress["spec"]


def test_https_with_the_configured_certificate_and_redirect_when_a_domain_is_set() -> None:
    values = alb_annotations(ingress_for("prod"))
    assert json.loads(values[f"{ALB}/listen-ports"]) == [{"HTTP": 80}, {"HTTPS": 443}]
    assert values[f"{ALB}/ssl-redirect"] == "443"
    assert values[f"{ALB}/certificate-arn"] == (
        "arn:aws:acm:us-west-2:333333333333:certificate/00000000-0000-4000-8000-000000000000"
    )
    assert values[f"{ALB}/ssl-policy"].startswith("ELBSecurityPolicy-TLS13")


def test_internal_http_only_without_a_domain() -> None:
    values = alb_annotations(ingress_for("dev"))
    assert json.loads(values[f"{ALB}/listen-ports"]) == [{"HTTP": 80}]
    assert f"{ALB}/certificate-arn" not in values
    assert values[f"{ALB}/scheme"] == "internal"
    assert values[f"{ALB}/inbound-cidrs"] == "10.10.0.0/16"


def test_scheme_follows_config() -> None:
    assert alb_annotations(ingress_for("prod"))[f"{ALB}/scheme"] == "internet-facing"
    assert alb_annotations(shipped_ingress("prod"))[f"{ALB}/scheme"] == "internet-facing"
    assert alb_annotations(ingress_for("staging"))[f"{ALB}/scheme"] == "internal"


def shipped_ingress(stage: str) -> dict[str, Any]:
    """The stage's Ingress exactly as its config file asks."""
    chart = charts_for(stage_config(stage_data(stage), stage)).ingress
    assert isinstance(chart, ModelIngressChart)
    return of_kind(chart, "Ingress")


def test_prod_ships_model_routing_on_its_one_domain_over_https() -> None:
    # One OpenAI base URL, https://llm.example.com/v1: the ALB has one rule, host <domain>, that sends
    # only the OpenAI API to the gateway; no per-model hosts, actions or header conditions.
    ingress = shipped_ingress("prod")
    assert ingress["spec"]["rules"] == [
        {
            "host": "llm.example.com",
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
            },
        }
    ]
    assert "defaultBackend" not in ingress["spec"]
    # The certificate must cover the one host the rule and TLS name: <domain> itself (README.md).
    assert ingress["spec"]["tls"] == [{"hosts": ["llm.example.com"]}]
    values = alb_annotations(ingress)
    assert not [key for key in values if key.startswith((f"{ALB}/actions.", f"{ALB}/conditions."))]
    # HTTPS only (HTTP redirects), the configured certificate, TLS 1.3 policy, the WAF, internet-facing.
    assert json.loads(values[f"{ALB}/listen-ports"]) == [{"HTTP": 80}, {"HTTPS": 443}]
    assert values[f"{ALB}/ssl-redirect"] == "443"
    assert values[f"{ALB}/certificate-arn"] == (
        "arn:aws:acm:us-west-2:333333333333:certificate/00000000-0000-4000-8000-000000000000"
    )
    assert values[f"{ALB}/ssl-policy"].startswith("ELBSecurityPolicy-TLS13")
    assert values[f"{ALB}/wafv2-acl-arn"] == PLACEHOLDERS.web_acl_arn
    assert values[f"{ALB}/scheme"] == "internet-facing"
    assert f"{ALB}/inbound-cidrs" not in values
    # The target group is the Envoy pods, health-checked on Envoy Gateway's readiness endpoint.
    assert values[f"{ALB}/healthcheck-port"] == str(gw.READINESS_PORT)
    assert values[f"{ALB}/healthcheck-path"] == gw.READINESS_PATH


def _attributes(value: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in value.split(","))


def test_target_groups_health_check() -> None:
    values = alb_annotations(ingress_for("dev"))
    assert values[f"{ALB}/target-type"] == "ip"
    assert values[f"{ALB}/healthcheck-path"] == "/health"


def test_target_groups_route_to_the_least_busy_replica() -> None:
    # The capacity planner's assumption (planner/settings.py); the ALB default is round_robin.
    # Attribute and annotation as documented for controller v2.8.2 (docs/guide/ingress/annotations.md).
    # In `model` routing the target group is the gateway's Envoy pods (which then pick a model pod by
    # least request, test_model_gateway.py): least outstanding there too.
    for stage in ("dev", "staging", "prod"):
        for ingress in (ingress_for(stage), shipped_ingress(stage)):
            attributes = _attributes(alb_annotations(ingress)[f"{ALB}/target-group-attributes"])
            assert attributes["load_balancing.algorithm.type"] == "least_outstanding_requests", stage


def test_deregistration_delay_covers_the_longest_grace_period_of_the_stage() -> None:
    # The ALB must not cut a draining pod's streams before the kubelet would kill the pod.
    charts = charts_for(stage_config(stage_data("prod"), "prod"))
    assert charts.ingress is not None
    attributes = _attributes(
        alb_annotations(of_kind(charts.ingress, "Ingress"))[f"{ALB}/target-group-attributes"]
    )
    graces = [
        of_kind(chart, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        for chart in charts.endpoints.values()
        if isinstance(chart, ModelEndpointChart)
    ]
    assert len(set(graces)) == 2  # prod's 70B model has a longer max_request_seconds than the 8B
    assert int(attributes["deregistration_delay.timeout_seconds"]) == max(graces)
    assert max(graces) <= 3600  # the target group attribute's upper bound


def test_access_logs_and_waf() -> None:
    values = alb_annotations(ingress_for("dev"))
    attributes = dict(item.split("=", 1) for item in values[f"{ALB}/load-balancer-attributes"].split(","))
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["access_logs.s3.bucket"] == PLACEHOLDERS.access_logs_bucket_name
    assert attributes["access_logs.s3.prefix"] == "alb/dev"
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert values[f"{ALB}/wafv2-acl-arn"] == PLACEHOLDERS.web_acl_arn


def test_ingress_class_is_the_load_balancer_controller() -> None:
    assert ingress_for("dev")["spec"]["ingressClassName"] == "alb"


def test_a_stage_without_models_gets_no_ingress() -> None:
    data = stage_data()
    data["models"] = []
    data["offhours"]["enabled"] = False
    assert charts_for(stage_config(data)).ingress is None
