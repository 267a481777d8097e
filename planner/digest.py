"""A digest of whole plans: every report figure and a hash of every per-request and per-time array.

Speed work must leave results bit-identical; tests/unit/planner/test_planner_golden.py compares the
digest of a few small plans with one recorded before the change (tools/planner_golden.py rewrites it
when a change of the model is meant to move the figures).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

import numpy as np

from config import load_stages
from config.stage import StageConfig
from planner.plan import VersionPlan, plan_stage
from planner.settings import PlannerSettings
from planner.simspec import SimResult
from planner.trace import DEFAULT_TRACE, Trace, in_zone, load_trace, restart, shape

# (name, stage, shape spec, local start, settings overrides): small enough for a unit test, chosen to
# pass through off-hours, Spot notices and capacity failures, the oracle search and a fitted re-plan.
CASES: tuple[tuple[str, str, str, str, dict[str, Any]], ...] = (
    (
        "prod-night-spot",
        "prod",
        "thin:0.3",
        "2024-03-05T22:20",
        {"spot_interruptions_per_node_hour": 2.0, "spot_capacity_failure_probability": 0.3},
    ),
    ("dev-short", "dev", "thin:0.5", "2024-03-05T10:00", {}),
)


def _array_hash(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()[:16]


def result_digest(result: SimResult) -> dict[str, Any]:
    arrays = {
        name: _array_hash(getattr(result, name))
        for name in (
            "first_token",
            "admitted",
            "finished",
            "outcome",
            "series_time",
            "series_desired",
            "series_ready",
            "hour_lengths",
        )
    }
    return {
        **arrays,
        "on_demand_instance_hours": {
            key: _array_hash(value) for key, value in sorted(result.on_demand_instance_hours.items())
        },
        "node_seconds": result.node_seconds,
        "gpu_seconds": result.gpu_seconds,
        "dollars": result.dollars,
        "node_launches": result.node_launches,
        "spot_interruptions": result.spot_interruptions,
        "spot_capacity_failures": result.spot_capacity_failures,
        "warmup_settled_seconds": result.warmup_settled_seconds,
    }


def plan_digest(plan: VersionPlan) -> dict[str, Any]:
    return {
        "title": plan.title,
        "summaries": [asdict(summary) for summary in plan.summaries],
        "results": {name: result_digest(result) for name, result in plan.results.items()},
        "oracle_utilisation": plan.oracle_utilisation,
        "static_replicas": plan.static_replicas,
        "notes": plan.notes,
        "trace_size": plan.trace.size,
    }


def case_inputs(name: str) -> tuple[StageConfig, Trace, PlannerSettings]:
    """A case's stage, its shaped trace (the bundled hour from the case's local start) and settings."""
    _, stage_name, spec, start, overrides = next(case for case in CASES if case[0] == name)
    stage = load_stages()[stage_name]
    zone = stage.offhours.timezone
    recorded = load_trace(DEFAULT_TRACE)
    local = datetime.fromisoformat(start).replace(tzinfo=in_zone(recorded, zone).zone)
    trace = shape(in_zone(restart(recorded, local), zone), spec, 1)
    return stage, trace, replace(PlannerSettings(), **overrides)


def case_digest(name: str, workers: int = 1) -> list[dict[str, Any]]:
    stage, trace, settings = case_inputs(name)
    # Full results: the digest hashes every per-request column (lean ones do not carry them).
    plans = plan_stage(stage, trace, settings, seed=1, workers=workers, lean=False)
    return [plan_digest(plan) for plan in plans]
