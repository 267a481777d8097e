"""Write the xDS shapes the gateway end-to-end test builds its Envoy bootstrap from (facts, not code).

Usage:
    .venv/bin/python -m tools.envoy_gateway_xds_facts <envoyproxy/gateway git dir> [tag] [output]
    (defaults: tag v1.8.3, output tests/gateway_e2e/envoy-gateway-<tag>-xds.json)

Envoy Gateway's translator tests keep golden xDS outputs under
internal/xds/translator/testdata/out/xds-ir/ (inputs in testdata/in/xds-ir/). This script reads,
at the pinned tag, the pieces k8s_charts/model_gateway.py's objects turn into, and writes them
verbatim with the file each comes from:

- envoy_image: api/v1alpha1/shared_types.go DefaultEnvoyProxyImage (the Envoy the wheel must match).
- filter_order: internal/xds/translator/httpfilters.go newOrderedHTTPFilter, for the filters used.
- hcm: api-key-auth.listeners.yaml, the HTTP connection manager's own settings (not its filters,
  route source or stat prefix) and its router filter.
- api_key_auth_filter / api_key_auth_per_route: the same file's disabled listener filter and
  api-key-auth.routes.yaml's first route's per-route config (with sanitize: hideCredentials).
- custom_response_local: custom-response-source.listeners.yaml's filter for a `source: Local`
  responseOverride, and the FilterConfig that enables it on a route (.routes.yaml).
- direct_response_route: http-route-direct-response.routes.yaml's route with a body and a
  Content-Type (the HTTPRouteFilter directResponse shape), and the route table's body size limit.
- weighted_cluster / weighted_endpoints: http-route-weighted-backend.clusters.yaml and
  .endpoints.yaml (one locality per weighted backendRef, least request).

tests/unit/tools/test_envoy_gateway_xds_facts.py regenerates the file when the git dir is at hand
and checks the chart's Envoy image against it; tests/gateway_e2e/envoy_bootstrap.py uses it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

GOLDEN = "internal/xds/translator/testdata/out/xds-ir"
FILTERS = {"custom_response": "CustomResponse", "api_key_auth": "APIKeyAuth", "router": "Router"}


def show(git_dir: Path, tag: str, path: str) -> str:
    return subprocess.run(  # noqa: S603
        ["git", "-C", str(git_dir), "show", f"{tag}:{path}"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def filter_order(source: str) -> dict[str, int]:
    """The order newOrderedHTTPFilter gives each filter we use (lower runs first on requests)."""
    order: dict[str, int] = {}
    for name, constant in FILTERS.items():
        match = re.search(rf"EnvoyFilter{constant}\):\s*order = (\d+)", source)
        if not match:
            raise ValueError(f"httpfilters.go: no order for EnvoyFilter{constant}")
        order[name] = int(match.group(1))
    return order


def _http_filter(filters: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    found = [f for f in filters if str(f["name"]).startswith(prefix)]
    if not found:
        raise ValueError(f"no HTTP filter named {prefix}*")
    return found[0]


def extract(git_dir: Path, tag: str) -> dict[str, Any]:
    def golden(name: str) -> Any:
        return yaml.safe_load(show(git_dir, tag, f"{GOLDEN}/{name}"))

    image = re.search(
        r'DefaultEnvoyProxyImage = "([^"]+)"', show(git_dir, tag, "api/v1alpha1/shared_types.go")
    )
    if not image:
        raise ValueError("shared_types.go: no DefaultEnvoyProxyImage")

    api_key_hcm = golden("api-key-auth.listeners.yaml")[0]["defaultFilterChain"]["filters"][0]["typedConfig"]
    api_key_route = golden("api-key-auth.routes.yaml")[0]["virtualHosts"][0]["routes"][0]
    custom_hcm = golden("custom-response-source.listeners.yaml")[0]["defaultFilterChain"]["filters"][0][
        "typedConfig"
    ]
    local = _http_filter(
        custom_hcm["httpFilters"],
        "envoy.filters.http.custom_response/backendtrafficpolicy/default/policy-local",
    )
    custom_routes = golden("custom-response-source.routes.yaml")[0]["virtualHosts"][0]["routes"]
    enable = next(iter(custom_routes[0]["typedPerFilterConfig"].values()))
    direct_table = golden("http-route-direct-response.routes.yaml")[0]
    direct_route = next(
        route
        for route in direct_table["virtualHosts"][0]["routes"]
        if "bodyFormat" in route.get("directResponse", {}) and route.get("responseHeadersToAdd")
    )
    cluster = golden("http-route-weighted-backend.clusters.yaml")[0]
    endpoints = golden("http-route-weighted-backend.endpoints.yaml")[0]
    skip = {"httpFilters", "rds", "statPrefix"}
    return {
        "source": {"repository": "github.com/envoyproxy/gateway", "tag": tag, "golden_dir": GOLDEN},
        "envoy_image": image.group(1),
        "filter_order": filter_order(show(git_dir, tag, "internal/xds/translator/httpfilters.go")),
        "hcm": {
            "from": "api-key-auth.listeners.yaml",
            "settings": {key: value for key, value in api_key_hcm.items() if key not in skip},
            "router_filter": _http_filter(api_key_hcm["httpFilters"], "envoy.filters.http.router"),
        },
        "api_key_auth_filter": {
            "from": "api-key-auth.listeners.yaml",
            "filter": _http_filter(api_key_hcm["httpFilters"], "envoy.filters.http.api_key_auth"),
        },
        "api_key_auth_per_route": {
            "from": "api-key-auth.routes.yaml",
            "typed_per_filter_config": api_key_route["typedPerFilterConfig"],
        },
        "custom_response_local": {
            "from": "custom-response-source.listeners.yaml, custom-response-source.routes.yaml",
            "filter": local,
            "route_enable": enable,
        },
        "direct_response_route": {
            "from": "http-route-direct-response.routes.yaml",
            "route": direct_route,
            "max_direct_response_body_size_bytes": direct_table["maxDirectResponseBodySizeBytes"],
        },
        "weighted_cluster": {
            "from": "http-route-weighted-backend.clusters.yaml, http-route-weighted-backend.endpoints.yaml",
            "cluster": cluster,
            "endpoints": endpoints,
        },
    }


def main(argv: list[str]) -> None:
    git_dir = Path(argv[1])
    tag = argv[2] if len(argv) > 2 else "v1.8.3"
    output = Path(argv[3]) if len(argv) > 3 else Path(f"tests/gateway_e2e/envoy-gateway-{tag}-xds.json")
    output.write_text(json.dumps(extract(git_dir, tag), indent=2, sort_keys=True) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main(sys.argv)
