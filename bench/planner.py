"""Planner speed: simulated requests per wall second, and wall time for the one-hour and one-week traces.

Run from the project root: ``python bench/planner.py [--stage prod] [--full-week]``. Targets (issue 20,
item 6): the prod comparison of a week under 2 minutes on 2 cores. The machine may be shared, so the
CPU seconds (this process and its workers) are printed beside the wall time, with the load average;
``bench/planner_compare.py`` runs this tree and a previous version side by side, ``bench/planner_big.py``
a 27M-request week.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import planner
from config import load_stages
from planner.plan import plan_stage, simulate
from planner.policies import base_setup
from planner.settings import PlannerSettings
from planner.trace import DEFAULT_TRACE, Trace, load_trace, shape


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (the pool's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_configured(stage_name: str, trace: Trace) -> tuple[float, int]:
    """Wall time of one simulation of every model of the stage under its configured policy."""
    stage = load_stages()[stage_name]
    settings = PlannerSettings()
    started = time.perf_counter()
    requests = 0
    for model in stage.models:
        for version in model.versions:
            simulate(base_setup(stage, model, version, trace, settings, seed=1), trace)
            requests += trace.size
    return time.perf_counter() - started, requests


def time_full_plan(stage_name: str, trace: Trace, workers: int = 1) -> tuple[float, int]:
    """Wall time of the whole comparison (every policy, the oracle search), as ``make plan`` runs it."""
    stage = load_stages()[stage_name]
    counted = [0]

    def count(step: int) -> None:
        counted[0] += step

    started = time.perf_counter()
    plan_stage(stage, trace, PlannerSettings(), seed=1, progress=count, workers=workers)
    return time.perf_counter() - started, counted[0]


def peak_rss_mib() -> float:
    """Peak resident memory of this process and its finished children (Linux: ru_maxrss in KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--full-week", action="store_true", help="also time every policy on the week trace")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for whole plans")
    parser.add_argument("--trace", type=Path, help="also time loading this trace file (e.g. a 2M-row CSV)")
    args = parser.parse_args()
    if args.trace:
        started = time.perf_counter()
        loaded = load_trace(args.trace)
        print(f"loaded {loaded.size:,} requests from {args.trace} in {time.perf_counter() - started:.1f} s")
    hour = load_trace(DEFAULT_TRACE)
    week = shape(hour, "week", seed=1)
    print(f"stage {args.stage}; one hour: {hour.size:,} requests; one week (SYNTHETIC): {week.size:,}")
    load = os.getloadavg()[0]
    rows = []
    measures: tuple[tuple[str, Callable[[], tuple[float, int]]], ...] = (
        ("one hour, configured policy", lambda: time_configured(args.stage, hour)),
        ("one hour, all policies (make plan)", lambda: time_full_plan(args.stage, hour, args.workers)),
        ("one week, configured policy", lambda: time_configured(args.stage, week)),
        ("one week, all policies", lambda: time_full_plan(args.stage, week, args.workers)),
    )
    for name, measure in measures:
        if name == "one week, all policies" and not args.full_week:
            continue
        cpu = cpu_seconds()
        wall, requests = measure()
        rows.append((name, wall, cpu_seconds() - cpu, requests))
    print(f"{'run':40} {'wall s':>8} {'CPU s':>8} {'simulated requests':>19} {'requests/CPU s':>15}")
    for name, wall, cpu, requests in rows:
        print(f"{name:40} {wall:8.2f} {cpu:8.2f} {requests:19,} {requests / cpu:15,.0f}")
    print(f"load average (1 min) before {load:.1f}, after {os.getloadavg()[0]:.1f}; {os.cpu_count()} CPUs")
    print(f"workers {args.workers}; peak memory {peak_rss_mib():,.0f} MiB (largest process)")
    print(f"simulator: {'compiled (mypyc)' if planner.compiled() else 'plain Python'}")


if __name__ == "__main__":
    main()
