"""The vendored list of exporter metric names and a PromQL walker that finds the names an expression reads."""

from __future__ import annotations

from pathlib import Path

import promql_parser
import yaml

EXPORTED_METRICS_FILE = Path(__file__).resolve().parents[2] / "data" / "exported_metrics.yaml"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def exported_metrics() -> dict[str, set[str]]:
    """Exporter -> every series name it emits (histograms expanded)."""
    document = yaml.safe_load(EXPORTED_METRICS_FILE.read_text())
    names: dict[str, set[str]] = {}
    for exporter, entry in document["exporters"].items():
        emitted = set(entry.get("counters", [])) | set(entry.get("gauges", []))
        for histogram in entry.get("histograms", []):
            emitted |= {histogram + suffix for suffix in HISTOGRAM_SUFFIXES}
        names[exporter] = emitted
    return names


def all_exported_metrics() -> set[str]:
    return set().union(*exported_metrics().values())


def metric_names(expr: str) -> set[str]:
    """Names of every vector selector in ``expr`` (raises if it is not valid PromQL)."""
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return names
