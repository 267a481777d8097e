"""docs/operations.md states the Kubernetes permissions that stacks/ops/rbac.py grants."""

from __future__ import annotations

from pathlib import Path

from stacks.ops.rbac import OFFHOURS_SCALER_RULES, SPOT_INTERRUPTION_RULES

OPERATIONS_DOC = Path(__file__).resolve().parents[3] / "docs" / "operations.md"


def rbac_cells() -> tuple[str, str]:
    row = next(line for line in OPERATIONS_DOC.read_text().splitlines() if line.startswith("| RBAC |"))
    _, _, spot, scaler, _ = row.split("|")
    return spot, scaler


def test_the_rbac_table_names_every_resource_and_verb_granted() -> None:
    for cell, rules in zip(rbac_cells(), (SPOT_INTERRUPTION_RULES, OFFHOURS_SCALER_RULES), strict=True):
        for rule in rules:
            for resource in rule["resources"]:
                assert f"{resource} {'/'.join(rule['verbs'])}" in cell, (resource, cell)
