"""Regenerate data/vllm_histogram_buckets.yaml from vLLM wheels (the facts SLO thresholds are checked on).

    pip download --no-deps vllm==0.11.0 vllm==0.33.0 -d /tmp/vllm-wheels
    python -m tools.vllm_histogram_buckets /tmp/vllm-wheels/vllm-*.whl > data/vllm_histogram_buckets.yaml

Reads the bucket lists of the latency histograms from each wheel's source with ``ast`` (nothing is
imported or executed): releases up to 0.11 spell them in ``vllm/v1/metrics/loggers.py``, later
ones in ``vllm/v1/metrics/buckets.py``.
"""

from __future__ import annotations

import ast
import re
import sys
import zipfile
from pathlib import Path

import yaml

HISTOGRAMS = {
    "vllm:time_to_first_token_seconds": "TIME_TO_FIRST_TOKEN_BUCKETS",
    "vllm:inter_token_latency_seconds": "INTER_TOKEN_LATENCY_BUCKETS",
    "vllm:e2e_request_latency_seconds": "REQUEST_LATENCY_BUCKETS",
}
WHEEL_VERSION = re.compile(r"vllm-([0-9][^-]*)-")


def _numbers(node: ast.AST) -> list[float]:
    value = ast.literal_eval(node)
    return [float(item) for item in value]


def _from_buckets_module(source: str) -> dict[str, list[float]]:
    constants = {
        target.id: node.value
        for node in ast.parse(source).body
        if isinstance(node, ast.AnnAssign | ast.Assign)
        for target in ([node.target] if isinstance(node, ast.AnnAssign) else node.targets)
        if isinstance(target, ast.Name) and node.value is not None
    }
    return {metric: _numbers(constants[constant]) for metric, constant in HISTOGRAMS.items()}


def _from_loggers(source: str) -> dict[str, list[float]]:
    """Histogram(name="...", buckets=[...] or buckets=<local list>) calls in loggers.py."""
    tree = ast.parse(source)
    lists = {
        target.id: node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.List)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found: dict[str, list[float]] = {}
    for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
        keywords = {keyword.arg: keyword.value for keyword in call.keywords}
        name, buckets = keywords.get("name"), keywords.get("buckets")
        if not (isinstance(name, ast.Constant) and name.value in HISTOGRAMS and buckets is not None):
            continue
        found[name.value] = _numbers(lists[buckets.id] if isinstance(buckets, ast.Name) else buckets)
    return found


def buckets_of(wheel: Path) -> dict[str, list[float]]:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        if "vllm/v1/metrics/buckets.py" in names:
            return _from_buckets_module(archive.read("vllm/v1/metrics/buckets.py").decode())
        return _from_loggers(archive.read("vllm/v1/metrics/loggers.py").decode())


def main(wheels: list[str]) -> None:
    releases = {}
    for wheel in sorted(wheels):
        match = WHEEL_VERSION.search(Path(wheel).name)
        if not match:
            raise SystemExit(f"{wheel}: not a vllm wheel file name")
        releases[f"v{match.group(1)}"] = buckets_of(Path(wheel))
    header = (
        "# Upper bounds (le) of vLLM's latency histograms per release, read from the wheels' source by\n"
        "# tools/vllm_histogram_buckets.py (see its docstring to regenerate). Sources:\n"
        "# https://github.com/vllm-project/vllm/blob/<release>/vllm/v1/metrics/loggers.py (<= 0.11) and\n"
        "# .../vllm/v1/metrics/buckets.py (later). SLO thresholds must be one of these bounds.\n"
    )
    print(header + yaml.safe_dump({"releases": releases}, sort_keys=False, default_flow_style=None), end="")


if __name__ == "__main__":
    main(sys.argv[1:])
