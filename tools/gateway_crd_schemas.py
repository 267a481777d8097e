"""Regenerate tests/schemas/ for the custom resources of `model` routing (k8s_charts/model_gateway.py).

Reads each CustomResourceDefinition from the pinned release's own chart, in a git clone of its
repository (as `fetch` or `git clone` leaves it: <git-root>/<owner>+<name>/repo), and writes its
openAPIV3Schema through tools/crd_schema.py (descriptions dropped, unknown fields rejected).

    python -m tools.gateway_crd_schemas --git-root /path/to/mirrors

Bump: change the ref here with the versions in constructs_lib/addons/envoy_gateway.py, run this.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from tools.crd_schema import crd_schema

SCHEMAS = Path(__file__).resolve().parent.parent / "tests" / "schemas"
EG = ("envoyproxy/gateway", "v1.8.3", "charts/gateway-helm/charts/crds/crds")
AIGW = ("envoyproxy/ai-gateway", "v1.1.0", "manifests/charts/ai-gateway-crds-helm/templates")


@dataclass(frozen=True)
class CrdSource:
    repository: str
    ref: str
    path: str
    name: str  # the CRD's metadata.name
    version: str
    out: str


CRDS = (
    CrdSource(
        *EG[:2],
        f"{EG[2]}/gatewayapi-crds.yaml",
        "gateways.gateway.networking.k8s.io",
        "v1",
        "gatewayapi-gateway-v1.json",
    ),
    CrdSource(
        *EG[:2],
        f"{EG[2]}/gatewayapi-crds.yaml",
        "gatewayclasses.gateway.networking.k8s.io",
        "v1",
        "gatewayapi-gatewayclass-v1.json",
    ),
    CrdSource(
        *EG[:2],
        f"{EG[2]}/generated/gateway.envoyproxy.io_envoyproxies.yaml",
        "envoyproxies.gateway.envoyproxy.io",
        "v1alpha1",
        "eg-envoyproxy-v1alpha1.json",
    ),
    CrdSource(
        *EG[:2],
        f"{EG[2]}/generated/gateway.envoyproxy.io_backends.yaml",
        "backends.gateway.envoyproxy.io",
        "v1alpha1",
        "eg-backend-v1alpha1.json",
    ),
    CrdSource(
        *EG[:2],
        f"{EG[2]}/generated/gateway.envoyproxy.io_clienttrafficpolicies.yaml",
        "clienttrafficpolicies.gateway.envoyproxy.io",
        "v1alpha1",
        "eg-clienttrafficpolicy-v1alpha1.json",
    ),
    CrdSource(
        *EG[:2],
        f"{EG[2]}/generated/gateway.envoyproxy.io_httproutefilters.yaml",
        "httproutefilters.gateway.envoyproxy.io",
        "v1alpha1",
        "eg-httproutefilter-v1alpha1.json",
    ),
    CrdSource(
        *EG[:2],
        f"{EG[2]}/generated/gateway.envoyproxy.io_backendtrafficpolicies.yaml",
        "backendtrafficpolicies.gateway.envoyproxy.io",
        "v1alpha1",
        "eg-backendtrafficpolicy-v1alpha1.json",
    ),
    CrdSource(
        *EG[:2],
        f"{EG[2]}/generated/gateway.envoyproxy.io_securitypolicies.yaml",
        "securitypolicies.gateway.envoyproxy.io",
        "v1alpha1",
        "eg-securitypolicy-v1alpha1.json",
    ),
    CrdSource(
        *AIGW[:2],
        f"{AIGW[2]}/aigateway.envoyproxy.io_aigatewayroutes.yaml",
        "aigatewayroutes.aigateway.envoyproxy.io",
        "v1beta1",
        "aigw-aigatewayroute-v1beta1.json",
    ),
    CrdSource(
        *AIGW[:2],
        f"{AIGW[2]}/aigateway.envoyproxy.io_aiservicebackends.yaml",
        "aiservicebackends.aigateway.envoyproxy.io",
        "v1beta1",
        "aigw-aiservicebackend-v1beta1.json",
    ),
)


def read(git_root: Path, source: CrdSource) -> dict:  # type: ignore[type-arg]
    git_dir = git_root / source.repository.replace("/", "+") / "repo"
    text = subprocess.run(  # noqa: S603 - fixed arguments, a local git directory
        ["git", "-C", str(git_dir), "show", f"{source.ref}:{source.path}"],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for document in yaml.safe_load_all(text):
        if document and document.get("metadata", {}).get("name") == source.name:
            return dict(document)
    raise SystemExit(f"{source.name} not in {source.repository}@{source.ref}:{source.path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--git-root", type=Path, required=True, help="directory of <owner>+<name>/repo git dirs"
    )
    args = parser.parse_args()
    for source in CRDS:
        url = f"https://github.com/{source.repository}/blob/{source.ref}/{source.path}"
        schema = crd_schema(read(args.git_root, source), source.version, url)
        (SCHEMAS / source.out).write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        print(f"{source.out}: {source.name} {source.version} from {source.repository}@{source.ref}")


if __name__ == "__main__":
    main()
