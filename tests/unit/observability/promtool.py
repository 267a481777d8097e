"""Run generated rule files through ``promtool test rules`` on synthetic series, minute by minute.

promtool comes from Debian's prometheus package (Makefile target ``.make/promtool`` puts it next to
the virtualenv's python). A scenario is a dict of series -> per-minute values (None: no sample);
expectations say which alerts are firing at a minute, and every other alert is asserted silent.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Values = list[float | None]


def promtool() -> str:
    beside_python = Path(sys.executable).parent / "promtool"
    found = str(beside_python) if beside_python.exists() else shutil.which("promtool")
    if not found:
        raise AssertionError("promtool not found: run `make install` (target .make/promtool)")
    return found


def gauge(minutes: int, value: Callable[[int], float | None]) -> Values:
    return [value(minute) for minute in range(minutes)]


def counter(minutes: int, per_minute: Callable[[int], float | None]) -> Values:
    """A counter growing by ``per_minute(t)`` each minute; None while the series does not exist."""
    total, values = 0.0, list[float | None]()
    for minute in range(minutes):
        increment = per_minute(minute)
        if increment is None:
            values.append(None)
            continue
        total += increment
        values.append(total)
    return values


def _promtool_values(values: Values) -> str:
    return " ".join("_" if value is None else f"{value:g}" for value in values)


@dataclass
class Scenario:
    """Series and the alerts expected at given minutes (alertname -> list of label sets)."""

    name: str
    series: dict[str, Values] = field(default_factory=dict)
    expectations: dict[int, dict[str, list[dict[str, str]]]] = field(default_factory=dict)

    def expect(self, minute: int, **firing: list[dict[str, str]]) -> None:
        self.expectations[minute] = firing


def _without_annotations(document: dict[str, Any]) -> dict[str, Any]:
    """promtool compares annotations exactly; templates are checked by `promtool check rules`."""
    stripped = copy.deepcopy(document)
    for group in stripped["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return stripped


def alert_names(documents: Iterable[dict[str, Any]]) -> set[str]:
    return {
        rule["alert"]
        for document in documents
        for g in document["groups"]
        for rule in g["rules"]
        if "alert" in rule
    }


def run(tmp_path: Path, rule_documents: dict[str, dict[str, Any]], scenarios: list[Scenario]) -> str:
    rule_files = []
    for name, document in rule_documents.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(_without_annotations(document), sort_keys=False))
        rule_files.append(path.name)
    names = sorted(alert_names(rule_documents.values()))
    tests = []
    for scenario in scenarios:
        alert_tests = [
            {
                "eval_time": f"{minute}m",
                "alertname": name,
                "exp_alerts": [{"exp_labels": labels} for labels in firing.get(name, [])],
            }
            for minute, firing in sorted(scenario.expectations.items())
            for name in names
        ]
        tests.append(
            {
                "name": scenario.name,
                "interval": "1m",
                "input_series": [
                    {"series": series, "values": _promtool_values(values)}
                    for series, values in scenario.series.items()
                ],
                "alert_rule_test": alert_tests,
            }
        )
    test_file = tmp_path / "tests.yaml"
    test_file.write_text(
        yaml.safe_dump(
            {"rule_files": rule_files, "evaluation_interval": "1m", "tests": tests}, sort_keys=False
        )
    )
    result = subprocess.run(  # noqa: S603 (promtool and files this test wrote)
        [promtool(), "test", "rules", test_file.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


def check_rules(tmp_path: Path, rule_documents: dict[str, dict[str, Any]]) -> str:
    """`promtool check rules` on the files as deployed (annotations and their templates included)."""
    paths = []
    for name, document in rule_documents.items():
        path = tmp_path / f"check-{name}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False, width=10_000))
        paths.append(str(path))
    result = subprocess.run(  # noqa: S603 (promtool and files this test wrote)
        [promtool(), "check", "rules", *paths], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
