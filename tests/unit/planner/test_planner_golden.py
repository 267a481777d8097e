"""Speed changes leave every figure bit-identical: plans compared with a digest recorded before them.

The digest (planner/digest.py) holds every summary figure, note and hash of every per-request and
per-time array of a few small plans. When a change is meant to move the figures, rewrite it with
``python tools/planner_golden.py`` and say so in the commit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from planner.digest import CASES, case_digest

GOLDEN = Path(__file__).parent / "golden" / "plan_digest.json"


def _differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = []
        for key in sorted(set(expected) | set(actual)):
            found += _differences(expected.get(key), actual.get(key), f"{path}.{key}")
        return found
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [
            d
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for d in _differences(e, a, f"{path}[{i}]")
        ]
    same = expected == actual or (expected != expected and actual != actual)  # NaN == NaN here
    return [] if same else [f"{path}: recorded {expected!r}, now {actual!r}"]


@pytest.mark.parametrize("name", [case[0] for case in CASES])
def test_plans_match_the_recorded_digest(name: str) -> None:
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))[name]
    actual = json.loads(json.dumps(case_digest(name)))
    differences = _differences(expected, actual)
    assert not differences, "\n".join(differences[:20])


def test_parallel_plan_matches_the_recorded_digest() -> None:
    name = CASES[0][0]
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))[name]
    actual = json.loads(json.dumps(case_digest(name, workers=2)))
    differences = _differences(expected, actual)
    assert not differences, "\n".join(differences[:20])
