"""An Envoy bootstrap shaped like Envoy Gateway v1.8.3's xDS for the model gateway, on loopback.

The Go control planes (Envoy Gateway's translator, AI Gateway's controller and ext_proc) do not run
here, so this file writes, as static resources, the listener, routes and clusters Envoy Gateway
emits for k8s_charts/model_gateway.py's objects. Each piece follows a golden xDS output of Envoy
Gateway's own translator tests at tag v1.8.3 (envoyproxy/gateway,
internal/xds/translator/testdata/out/xds-ir/<name>, inputs in testdata/in/xds-ir/); the file is named
beside each piece. Values are ours (the key, the 401 and 404 bodies, the model header, the weights).

What is not the same: xDS arrives over ADS in the cluster (`rds`, `eds`), here it is inline; the
versions' Backends are FQDNs (a STRICT_DNS cluster, one host per pod) there, fixed loopback
addresses (STATIC) here, with the same locality-weighted load assignment.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from k8s_charts.model_gateway import INVALID_API_KEY_BODY, MODEL_HEADER, MODEL_NOT_FOUND_BODY

API_KEY_AUTH = "envoy.filters.http.api_key_auth"
# Envoy Gateway names the custom_response filter after the BackendTrafficPolicy that asks for it.
CUSTOM_RESPONSE = "envoy.filters.http.custom_response/backendtrafficpolicy/models/model-gateway"
REQUEST_BUFFER_BYTES = 16 * 1024 * 1024  # ClientTrafficPolicy connection.bufferLimit 16Mi (the chart)


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


def _typed(type_name: str, **fields: Any) -> dict[str, Any]:
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


def _api_key_auth(client: str, key: str) -> dict[str, Any]:
    """SecurityPolicy apiKeyAuth {extractFrom: [headers: [Authorization]], sanitize: true} as
    api_key_auth.go buildAPIKeyAuthFilterConfig writes it (api-key-auth.listeners.yaml and, per route,
    api-key-auth.routes.yaml): sanitize becomes forwarding.hideCredentials, no client-id header."""
    return {
        "credentials": [{"client": client, "key": key}],
        "keySources": [{"header": "Authorization"}],
        "forwarding": {"hideCredentials": True},
    }


def _custom_response() -> dict[str, Any]:
    """BackendTrafficPolicy responseOverride {match: 401, source: Local, response: JSON} as
    custom-response-source.listeners.yaml's `policy-local` filter: status 401 AND a local reply."""
    status = {
        "name": "http-response-status-code-match-input",
        "typedConfig": _typed("envoy.type.matcher.v3.HttpResponseStatusCodeMatchInput"),
    }
    local = {
        "name": "http-response-local-reply-match-input",
        "typedConfig": _typed("envoy.type.matcher.v3.HttpResponseLocalReplyMatchInput"),
    }
    action = _typed(
        "envoy.extensions.http.custom_response.local_response_policy.v3.LocalResponsePolicy",
        bodyFormat={"textFormat": INVALID_API_KEY_BODY},
        responseHeadersToAdd=[
            {
                "appendAction": "OVERWRITE_IF_EXISTS_OR_ADD",
                "header": {"key": "Content-Type", "value": "application/json"},
            }
        ],
    )
    predicate = {
        "andMatcher": {
            "predicate": [
                {"singlePredicate": {"input": status, "valueMatch": {"exact": "401"}}},
                {"singlePredicate": {"input": local, "valueMatch": {"exact": "true"}}},
            ]
        }
    }
    return _typed(
        "envoy.extensions.filters.http.custom_response.v3.CustomResponse",
        customResponseMatcher={
            "matcherList": {
                "matchers": [
                    {
                        "predicate": predicate,
                        "onMatch": {
                            "action": {
                                "name": "backendtrafficpolicy/models/model-gateway/responseoverride/rule/0",
                                "typedConfig": action,
                            }
                        },
                    }
                ]
            }
        },
    )


def _per_route(client: str, key: str) -> dict[str, Any]:
    """Both policies target the Gateway, so Envoy Gateway enables both filters on every route
    (api-key-auth.routes.yaml: ApiKeyAuthPerRoute; custom-response-source.routes.yaml: an empty
    FilterConfig turns the listener's disabled custom_response filter on)."""
    return {
        API_KEY_AUTH: _typed(
            "envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuthPerRoute", **_api_key_auth(client, key)
        ),
        CUSTOM_RESPONSE: _typed("envoy.config.route.v3.FilterConfig", config={}),
    }


def _routes(models: tuple[ModelRoute, ...], client: str, key: str) -> dict[str, Any]:
    """A route per model matching the header AI Gateway's ext_proc sets (header match shape:
    http-route.routes.yaml), then the generated catch-all rule with our HTTPRouteFilter's direct
    response (http-route-direct-response.routes.yaml: body as an Envoy format string, base64 in
    textFormatSource.inlineBytes, Content-Type as an overwriting response header)."""
    routes: list[dict[str, Any]] = [
        {
            "name": f"aigatewayroute/models/{route.model}/rule/0",
            "match": {
                "prefix": "/",
                "headers": [{"name": MODEL_HEADER, "stringMatch": {"exact": route.model}}],
            },
            "route": {"cluster": route.model, "upgradeConfigs": [{"upgradeType": "websocket"}]},
            "typedPerFilterConfig": _per_route(client, key),
        }
        for route in models
    ]
    routes.append(
        {
            "name": "aigatewayroute/models/route-not-found",
            "match": {"prefix": "/"},
            "directResponse": {
                "status": 404,
                "bodyFormat": {
                    "textFormatSource": {
                        "inlineBytes": base64.b64encode(MODEL_NOT_FOUND_BODY.encode()).decode()
                    }
                },
            },
            "responseHeadersToAdd": [
                {
                    "appendAction": "OVERWRITE_IF_EXISTS_OR_ADD",
                    "header": {"key": "Content-Type", "value": "application/json"},
                }
            ],
            "typedPerFilterConfig": _per_route(client, key),
        }
    )
    return {
        "name": "models/model-gateway/http",
        "ignorePortInHostMatching": True,
        "maxDirectResponseBodySizeBytes": 1048576,
        "virtualHosts": [{"name": "models/model-gateway/http/*", "domains": ["*"], "routes": routes}],
    }


def _cluster(route: ModelRoute) -> dict[str, Any]:
    """One cluster per rule, one locality per weighted backendRef (http-route-weighted-backend
    .clusters.yaml and .endpoints.yaml): least_request (BackendTrafficPolicy loadBalancer LeastRequest,
    choice count left at Envoy's default) picks the pod, localityWeightedLbConfig the version."""
    return {
        "name": route.model,
        "type": "STATIC",
        "connectTimeout": "10s",
        "dnsLookupFamily": "V4_PREFERRED",
        "circuitBreakers": {"thresholds": [{"maxRetries": 1024}]},
        "commonLbConfig": {},
        "ignoreHealthOnHostRemoval": True,
        "perConnectionBufferLimitBytes": 32768,
        "loadBalancingPolicy": {
            "policies": [
                {
                    "typedExtensionConfig": {
                        "name": "envoy.load_balancing_policies.least_request",
                        "typedConfig": _typed(
                            "envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest",
                            localityLbConfig={"localityWeightedLbConfig": {}},
                        ),
                    }
                }
            ]
        },
        "loadAssignment": {
            "clusterName": route.model,
            "endpoints": [
                {
                    "locality": {"region": f"{route.model}/backend/{index}"},
                    "loadBalancingWeight": version.weight,
                    "lbEndpoints": [
                        {
                            "endpoint": {"address": {"socketAddress": {"address": host, "portValue": port}}},
                            "loadBalancingWeight": 1,
                        }
                        for host, port in version.endpoints
                    ],
                }
                for index, version in enumerate(route.versions)
            ],
        },
    }


def bootstrap(
    *, listener_port: int, admin_port: int, client: str, key: str, models: tuple[ModelRoute, ...]
) -> dict[str, Any]:
    """The whole bootstrap: admin and listener on 127.0.0.1 only."""
    hcm = _typed(
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        statPrefix=f"http-{listener_port}",
        # api-key-auth.listeners.yaml / custom-response-source.listeners.yaml: HCM settings, and the
        # filters in Envoy Gateway's order (httpfilters.go newOrderedHTTPFilter: custom_response 0,
        # api_key_auth 6, router last), so the key check's local 401 passes the custom_response filter.
        commonHttpProtocolOptions={"headersWithUnderscoresAction": "REJECT_REQUEST"},
        mergeSlashes=True,
        normalizePath=True,
        pathWithEscapedSlashesAction="UNESCAPE_AND_REDIRECT",
        serverHeaderTransformation="PASS_THROUGH",
        useRemoteAddress=True,
        httpFilters=[
            {"name": CUSTOM_RESPONSE, "disabled": True, "typedConfig": _custom_response()},
            {
                "name": API_KEY_AUTH,
                "disabled": True,
                "typedConfig": _typed(
                    "envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuth", **_api_key_auth(client, key)
                ),
            },
            {
                "name": "envoy.filters.http.router",
                "typedConfig": _typed(
                    "envoy.extensions.filters.http.router.v3.Router", suppressEnvoyHeaders=True
                ),
            },
        ],
        routeConfig=_routes(models, client, key),
    )
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
            "clusters": [_cluster(route) for route in models],
        },
    }
