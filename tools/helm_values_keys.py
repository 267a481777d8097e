"""Regenerate the valid values keys of each pinned Helm chart (constructs_lib/addons/values_keys/).

Each facts file lists every key path of the chart version's own values.yaml and what is under it:
``map`` (a mapping with defaults: only its listed keys exist), ``free`` (an empty mapping the chart
passes through, such as ``podAnnotations: {}``: any key below is valid) or ``leaf``; plus the keys
its templates read (``.Values.a.b``) and its Chart.yaml dependency conditions (``nfd.enabled``)
that values.yaml leaves out or only mentions in a comment (``# priorityClassName: ""``). The test
tests/unit/contracts/test_helm_values_keys.py checks every values key the project sets against it.

Each file also keeps ``image_defaults``: the default of every ``registry`` / ``repository`` /
``imageRegistry`` leaf, so tests/unit/security/test_image_registries.py can tell which registries an
add-on pulls from at its pinned version (subcharts' own values are not read: a dependency the project
enables needs its images checked by hand).

The source of each file is the chart's own repository at the commit that released the version
(``SOURCES``); the file records repository, ref, path and the SHA-256 of the values.yaml it read.

    python -m tools.helm_values_keys --git-root /path/to/mirrors   # <owner>+<name>/repo git dirs
    python -m tools.helm_values_keys --git-root ... --chart keda     # one chart

Bump a chart: change its version in constructs_lib, add its (repository, ref, path) here, run this.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

FACTS_DIR = Path(__file__).resolve().parent.parent / "constructs_lib" / "addons" / "values_keys"


@dataclass(frozen=True)
class ChartSource:
    chart: str
    version: str
    repository: str  # GitHub owner/name
    ref: str  # the tag or commit that released `version`
    path: str  # values.yaml inside the repository


SOURCES = (
    ChartSource(
        "cluster-autoscaler",
        "9.54.0",
        "kubernetes/autoscaler",
        "cluster-autoscaler-chart-9.54.0",
        "cluster-autoscaler/charts/cluster-autoscaler/values.yaml",
    ),
    ChartSource("keda", "2.18.1", "kedacore/charts", "v2.18.1", "keda/values.yaml"),
    ChartSource(
        "external-secrets",
        "2.9.0",
        "external-secrets/external-secrets",
        "helm-chart-2.9.0",
        "deploy/charts/external-secrets/values.yaml",
    ),
    ChartSource(
        "opentelemetry-collector",
        "0.140.0",
        "open-telemetry/opentelemetry-helm-charts",
        "opentelemetry-collector-0.140.0",
        "charts/opentelemetry-collector/values.yaml",
    ),
    ChartSource(
        "kube-state-metrics",
        "6.4.1",
        "prometheus-community/helm-charts",
        "kube-state-metrics-6.4.1",
        "charts/kube-state-metrics/values.yaml",
    ),
    ChartSource(
        "prometheus-node-exporter",
        "4.49.1",
        "prometheus-community/helm-charts",
        "prometheus-node-exporter-4.49.1",
        "charts/prometheus-node-exporter/values.yaml",
    ),
    ChartSource(
        "nvidia-device-plugin",
        "0.18.0",
        "NVIDIA/k8s-device-plugin",
        "v0.18.0",
        "deployments/helm/nvidia-device-plugin/values.yaml",
    ),
    ChartSource("dcgm-exporter", "4.6.0", "NVIDIA/dcgm-exporter", "4.4.1-4.6.0", "deployment/values.yaml"),
    # eks-charts has no per-chart tags: the commit that set the chart's version (chart-releaser
    # publishes on a version change).
    ChartSource(
        "aws-for-fluent-bit",
        "0.2.0",
        "aws/eks-charts",
        "2942cdce0d98bd257822c64520779a05c25df2c2",
        "stable/aws-for-fluent-bit/values.yaml",
    ),
    # Envoy Gateway releases its chart from values.tmpl.yaml (image placeholders filled at release).
    ChartSource(
        "gateway-helm", "v1.8.3", "envoyproxy/gateway", "v1.8.3", "charts/gateway-helm/values.tmpl.yaml"
    ),
    ChartSource(
        "ai-gateway-crds-helm",
        "v1.1.0",
        "envoyproxy/ai-gateway",
        "v1.1.0",
        "manifests/charts/ai-gateway-crds-helm/values.yaml",
    ),
    ChartSource(
        "ai-gateway-helm",
        "v1.1.0",
        "envoyproxy/ai-gateway",
        "v1.1.0",
        "manifests/charts/ai-gateway-helm/values.yaml",
    ),
    ChartSource(
        "aws-load-balancer-controller",
        "1.8.2",
        "aws/eks-charts",
        "222699a938ce86b8fdd281d9d5ac476bf9d391f3",
        "stable/aws-load-balancer-controller/values.yaml",
    ),
)


def key_kinds(values: Any, prefix: str = "") -> dict[str, str]:
    """Every key path of a values document (segments joined by '.') -> map | free | leaf."""
    kinds: dict[str, str] = {}
    if not isinstance(values, dict):
        return kinds
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            kinds[path] = "map"
            kinds.update(key_kinds(value, f"{path}."))
        elif isinstance(value, dict):
            kinds[path] = "free"
        else:
            kinds[path] = "leaf"
    return kinds


TEMPLATE_REFERENCE = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def referenced_keys(templates: Iterable[str], chart_yaml: str) -> set[str]:
    """Key paths the chart reads: ``.Values.x.y`` in templates, dependency conditions in Chart.yaml."""
    keys = {match.group(1)[1:] for text in templates for match in TEMPLATE_REFERENCE.finditer(text)}
    for dependency in (yaml.safe_load(chart_yaml) or {}).get("dependencies") or []:
        keys |= {c.strip() for c in str(dependency.get("condition") or "").split(",") if c.strip()}
    return keys


def with_references(kinds: dict[str, str], references: set[str]) -> dict[str, str]:
    """`kinds` plus each referenced path (its missing parents as maps), unless inside a free map."""
    merged = dict(kinds)
    for reference in sorted(references):
        parts = reference.split(".")
        for depth in range(1, len(parts) + 1):
            path = ".".join(parts[:depth])
            kind = merged.get(path)
            if kind in ("free", "leaf"):
                break  # anything below a pass-through or replaced value is the user's
            if kind is None:
                merged[path] = "map" if depth < len(parts) else "leaf"
    return merged


IMAGE_LEAVES = frozenset({"registry", "repository", "imageRegistry", "image"})
"""Leaf names that say where a chart's images come from (``image.repository``, ``image.registry``,
``global.imageRegistry``, external-secrets' ``global.repository``, and a full reference in a string
``image``, as gateway-helm's ``global.images.ratelimit.image``)."""


def image_defaults(values: Any, prefix: str = "") -> dict[str, str]:
    """Every registry/repository leaf of a values document with its default, by key path. The test
    tests/unit/security/test_image_registries.py overlays the project's values on these to find each
    add-on's registries."""
    found: dict[str, str] = {}
    if not isinstance(values, dict):
        return found
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            found.update(image_defaults(value, f"{path}."))
        elif key in IMAGE_LEAVES and isinstance(value, str):
            found[path] = value
    return found


def facts_file(chart: str, version: str) -> Path:
    return FACTS_DIR / f"{chart}-{version}.json"


def facts_document(
    source: ChartSource, text: str, templates: Iterable[str] = (), chart_yaml: str = ""
) -> dict[str, Any]:
    return {
        "chart": source.chart,
        "version": source.version,
        "source": {
            "repository": f"https://github.com/{source.repository}",
            "ref": source.ref,
            "path": source.path,
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
        },
        "keys": with_references(key_kinds(yaml.safe_load(text)), referenced_keys(templates, chart_yaml)),
        "image_defaults": image_defaults(yaml.safe_load(text)),
    }


def _git(git_root: Path, source: ChartSource, *args: str) -> str:
    git_dir = git_root / source.repository.replace("/", "+") / "repo"
    return subprocess.run(  # noqa: S603 - fixed arguments, a local git directory
        ["git", "-C", str(git_dir), *args],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _read_from_git(git_root: Path, source: ChartSource) -> tuple[str, list[str], str]:
    """values.yaml, the template files and Chart.yaml of the chart at its ref."""
    chart_dir = source.path.rsplit("/", 1)[0]
    names = _git(git_root, source, "ls-tree", "-r", "--name-only", source.ref, "--", f"{chart_dir}/templates")
    templates = [_git(git_root, source, "show", f"{source.ref}:{name}") for name in names.split()]
    return (
        _git(git_root, source, "show", f"{source.ref}:{source.path}"),
        templates,
        _git(git_root, source, "show", f"{source.ref}:{chart_dir}/Chart.yaml"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--git-root", type=Path, required=True, help="directory of <owner>+<name>/repo git dirs"
    )
    parser.add_argument("--chart", help="only this chart")
    args = parser.parse_args()
    FACTS_DIR.mkdir(parents=True, exist_ok=True)
    for source in SOURCES:
        if args.chart and source.chart != args.chart:
            continue
        values_text, templates, chart_yaml = _read_from_git(args.git_root, source)
        document = facts_document(source, values_text, templates, chart_yaml)
        facts_file(source.chart, source.version).write_text(
            json.dumps(document, indent=1, sort_keys=True) + "\n"
        )
        print(
            f"{source.chart} {source.version}: {len(document['keys'])} keys "
            f"from {source.repository}@{source.ref}"
        )


if __name__ == "__main__":
    main()
