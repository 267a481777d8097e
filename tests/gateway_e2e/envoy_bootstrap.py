"""An Envoy bootstrap shaped like Envoy Gateway v1.8.3's xDS for the model gateway, on loopback.

The Go control planes (Envoy Gateway's translator, AI Gateway's controller and ext_proc) do not run
here, so this file writes, as static resources, the listener, routes and clusters Envoy Gateway
emits for k8s_charts/model_gateway.py's objects. Every piece starts from a golden xDS output of
Envoy Gateway's own translator tests at the pinned tag, kept verbatim in envoy-gateway-v1.8.3-xds.json
(tools/envoy_gateway_xds_facts.py writes it from envoyproxy/gateway
internal/xds/translator/testdata/out/xds-ir/; each entry names its file), and only our values are
put in: the key, the 401 and 404 bodies, the model header, the weights, loopback addresses.

What is not the same: xDS arrives over ADS in the cluster (`rds`, `eds`), here it is inline; the
versions' Backends are FQDNs (a STRICT_DNS cluster, one host per pod) there, fixed loopback
addresses (STATIC) here, with the same locality-weighted load assignment.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k8s_charts.model_gateway import INVALID_API_KEY_BODY, MODEL_HEADER, MODEL_NOT_FOUND_BODY

FACTS_FILE = Path(__file__).with_name("envoy-gateway-v1.8.3-xds.json")
API_KEY_AUTH = "envoy.filters.http.api_key_auth"
# Envoy Gateway names the custom_response filter after the BackendTrafficPolicy that asks for it.
POLICY = "backendtrafficpolicy/models/model-gateway"
CUSTOM_RESPONSE = f"envoy.filters.http.custom_response/{POLICY}"
REQUEST_BUFFER_BYTES = 16 * 1024 * 1024  # ClientTrafficPolicy connection.bufferLimit 16Mi (the chart)
JSON_CONTENT_TYPE = {"key": "Content-Type", "value": "application/json"}


def facts() -> dict[str, Any]:
    return dict(json.loads(FACTS_FILE.read_text()))


@dataclass(frozen=True)
class Locality:
    """One model version: its canary weight and its pods (host, port)."""

    name: str
    weight: int
    endpoints: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ModelRoute:
    """One AIGatewayRoute rule: requests whose model header is `model` go to `versions`."""

    model: str
    versions: tuple[Locality, ...]


def _api_key_auth(typed_config: dict[str, Any], client: str, key: str) -> dict[str, Any]:
    """SecurityPolicy apiKeyAuth {extractFrom: [headers: [Authorization]], sanitize: true} into the
    golden filter or per-route config (api_key_auth.go buildAPIKeyAuthFilterConfig): sanitize is
    forwarding.hideCredentials, and no client-id header is forwarded."""
    config = dict(copy.deepcopy(typed_config))
    assert config["forwarding"]["hideCredentials"] is True  # the golden input sets sanitize: true
    config["credentials"] = [{"client": client, "key": key}]
    config["keySources"] = [{"header": "Authorization"}]
    config["forwarding"] = {"hideCredentials": True}
    return config


def _custom_response(golden: dict[str, Any]) -> dict[str, Any]:
    """BackendTrafficPolicy responseOverride {match: 401, source: Local, response: our JSON} in the
    golden `policy-local` filter (status 401 AND a local reply)."""
    entry = copy.deepcopy(golden)
    entry["name"] = CUSTOM_RESPONSE
    (matcher,) = entry["typedConfig"]["customResponseMatcher"]["matcherList"]["matchers"]
    statuses = [
        p["singlePredicate"]["valueMatch"]["exact"] for p in matcher["predicate"]["andMatcher"]["predicate"]
    ]
    assert statuses == ["401", "true"], statuses  # status 401, local reply: ours
    action = matcher["onMatch"]["action"]
    action["name"] = f"{POLICY}/responseoverride/rule/0"
    action["typedConfig"]["bodyFormat"] = {"textFormat": INVALID_API_KEY_BODY}
    action["typedConfig"]["responseHeadersToAdd"] = [
        {"appendAction": "OVERWRITE_IF_EXISTS_OR_ADD", "header": JSON_CONTENT_TYPE}
    ]
    return entry


def _per_route(known: dict[str, Any], client: str, key: str) -> dict[str, Any]:
    """Both policies target the Gateway, so Envoy Gateway enables both filters on every route."""
    (per_route,) = known["api_key_auth_per_route"]["typed_per_filter_config"].values()
    return {
        API_KEY_AUTH: _api_key_auth(per_route, client, key),
        CUSTOM_RESPONSE: copy.deepcopy(known["custom_response_local"]["route_enable"]),
    }


def _not_found_route(known: dict[str, Any], client: str, key: str) -> dict[str, Any]:
    """AI Gateway's generated catch-all rule with our HTTPRouteFilter's direct response: the golden
    route's body (an Envoy format string, base64) and Content-Type header, our values."""
    route = dict(copy.deepcopy(known["direct_response_route"]["route"]))
    route.pop("metadata")
    route["name"] = "aigatewayroute/models/route-not-found"
    route["match"] = {"prefix": "/"}
    route["directResponse"]["status"] = 404
    route["directResponse"]["bodyFormat"]["textFormatSource"]["inlineBytes"] = base64.b64encode(
        MODEL_NOT_FOUND_BODY.encode()
    ).decode()
    (content_type,) = [h for h in route["responseHeadersToAdd"] if h["header"]["key"] == "Content-Type"]
    content_type["header"] = JSON_CONTENT_TYPE
    route["responseHeadersToAdd"] = [content_type]
    route["typedPerFilterConfig"] = _per_route(known, client, key)
    return route


def _routes(known: dict[str, Any], models: tuple[ModelRoute, ...], client: str, key: str) -> dict[str, Any]:
    """A route per model matching the header AI Gateway's ext_proc sets (an HTTPRoute header match:
    `headers: [{name, stringMatch: {exact}}]`), then the catch-all."""
    routes: list[dict[str, Any]] = [
        {
            "name": f"aigatewayroute/models/{route.model}/rule/0",
            "match": {
                "prefix": "/",
                "headers": [{"name": MODEL_HEADER, "stringMatch": {"exact": route.model}}],
            },
            "route": {"cluster": route.model, "upgradeConfigs": [{"upgradeType": "websocket"}]},
            "typedPerFilterConfig": _per_route(known, client, key),
        }
        for route in models
    ]
    routes.append(_not_found_route(known, client, key))
    return {
        "name": "models/model-gateway/http",
        "ignorePortInHostMatching": True,
        "maxDirectResponseBodySizeBytes": known["direct_response_route"][
            "max_direct_response_body_size_bytes"
        ],
        "virtualHosts": [{"name": "models/model-gateway/http/*", "domains": ["*"], "routes": routes}],
    }


def _cluster(known: dict[str, Any], route: ModelRoute) -> dict[str, Any]:
    """The golden weighted cluster (least_request, localityWeightedLbConfig) and its load assignment
    shape: one locality per version weighted by its canary weight, each pod weight 1."""
    cluster = dict(copy.deepcopy(known["weighted_cluster"]["cluster"]))
    cluster.pop("edsClusterConfig")
    cluster.update(name=route.model, type="STATIC")
    template = known["weighted_cluster"]["endpoints"]["endpoints"][0]
    localities = []
    for index, version in enumerate(route.versions):
        locality = copy.deepcopy(template)
        locality["locality"] = {"region": f"{route.model}/backend/{index}"}
        locality["loadBalancingWeight"] = version.weight
        pods = []
        for host, port in version.endpoints:
            pod = copy.deepcopy(template["lbEndpoints"][0])
            pod["endpoint"]["address"]["socketAddress"] = {"address": host, "portValue": port}
            pods.append(pod)
        locality["lbEndpoints"] = pods
        localities.append(locality)
    cluster["loadAssignment"] = {"clusterName": route.model, "endpoints": localities}
    return cluster


def bootstrap(
    *, listener_port: int, admin_port: int, client: str, key: str, models: tuple[ModelRoute, ...]
) -> dict[str, Any]:
    """The whole bootstrap: admin and listener on 127.0.0.1 only."""
    known = facts()
    api_key_filter = copy.deepcopy(known["api_key_auth_filter"]["filter"])
    api_key_filter["typedConfig"] = _api_key_auth(api_key_filter["typedConfig"], client, key)
    filters = {
        "custom_response": _custom_response(known["custom_response_local"]["filter"]),
        "api_key_auth": api_key_filter,
        "router": known["hcm"]["router_filter"],
    }
    # Envoy Gateway's order (custom_response first), so api_key_auth's local 401 passes through the
    # custom_response filter on its way out.
    order = known["filter_order"]
    hcm = {
        **known["hcm"]["settings"],
        "statPrefix": f"http-{listener_port}",
        "httpFilters": [filters[name] for name in sorted(filters, key=order.__getitem__)],
        "routeConfig": _routes(known, models, client, key),
    }
    return {
        "admin": {"address": {"socketAddress": {"address": "127.0.0.1", "portValue": admin_port}}},
        "staticResources": {
            "listeners": [
                {
                    "name": "models/model-gateway/http",
                    "address": {"socketAddress": {"address": "127.0.0.1", "portValue": listener_port}},
                    "perConnectionBufferLimitBytes": REQUEST_BUFFER_BYTES,
                    "maxConnectionsToAcceptPerSocketEvent": 1,
                    "defaultFilterChain": {
                        "name": "models/model-gateway/http",
                        "filters": [
                            {"name": "envoy.filters.network.http_connection_manager", "typedConfig": hcm}
                        ],
                    },
                }
            ],
            "clusters": [_cluster(known, route) for route in models],
        },
    }
