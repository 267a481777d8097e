"""Where a pooled comparison's wall time goes: each simulation's submit, start and end, per worker.

``python bench/planner_timeline.py [--stage prod] [--shape week] [--workers 2] [--out timeline.tsv]``
runs the comparison as ``make plan`` does (``plan_stage`` with a pool) and records, for every task on the
pool, when the planning threads submitted it, when a worker started and finished it and which worker.
Prints the per-worker busy and idle time, the idle stretches longer than a second with the tasks
running on the other worker (who waits for what), and writes one row a task to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import planner
import planner.plan as plan_module
from bench.planner import cpu_seconds, peak_rss_mib
from config import load_stages
from planner.clock import resolve_start
from planner.settings import PlannerSettings
from planner.sim import SimSetup
from planner.trace import DEFAULT_TRACE, in_zone, load_trace, restart, shape

_original = plan_module.simulate_replay
TASKS: list[dict[str, Any]] = []
ORIGIN = time.perf_counter()


def label(setup: SimSetup, size: int) -> str:
    scaling = setup.autoscaling
    what = scaling.kind
    if scaling.kind == "hpa":
        what = "hpa gpu" if scaling.gpu_target is not None else "hpa queue"
        if all(not off for _, off in setup.offhours):
            what += " no-offhours"
        if not any(group.spot for group in setup.groups):
            what += " on-demand"
        if setup.cluster_scale_ups:
            what += " coupled"
    elif scaling.kind == "static":
        what = f"static {scaling.static_replicas}"
    elif scaling.kind == "oracle":
        what = f"oracle peak {max(count for _, count in scaling.oracle_schedule)}"
    return f"{setup.profile.tokens_per_step:g}tps/{setup.profile.kv_capacity_tokens} {what} n={size:,}"


def timed(*args: Any) -> tuple[Any, tuple[int, float, float]]:
    began = time.perf_counter()
    found = _original(*args)
    return found, (os.getpid(), began - ORIGIN, time.perf_counter() - ORIGIN)


class TimedPool(ProcessPoolExecutor):
    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        if fn is not _original:
            return super().submit(fn, *args, **kwargs)
        row: dict[str, Any] = {"submit": time.perf_counter() - ORIGIN, "what": label(args[0], args[1].size)}
        TASKS.append(row)
        inner = super().submit(timed, *args, **kwargs)
        outer: Future[Any] = Future()

        def done(future: Future[Any]) -> None:
            found, (pid, began, ended) = future.result()
            row.update(pid=pid, start=began, end=ended, back=time.perf_counter() - ORIGIN)
            outer.set_result(found)

        inner.add_done_callback(done)
        return outer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--shape", default="week")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    plan_module.ProcessPoolExecutor = TimedPool  # type: ignore[attr-defined]
    stage = load_stages()[args.stage]
    recorded = load_trace(DEFAULT_TRACE)
    start = resolve_start(None, recorded.start, stage.offhours)
    trace = shape(in_zone(restart(recorded, start), stage.offhours.timezone), args.shape, 1)
    load = os.getloadavg()[0]
    cpu = cpu_seconds()
    began = time.perf_counter() - ORIGIN
    plan_module.plan_stage(stage, trace, PlannerSettings(), seed=1, workers=args.workers)
    ended = time.perf_counter() - ORIGIN
    cpu = cpu_seconds() - cpu
    TASKS.sort(key=lambda row: row["start"])
    print(f"{'submit':>7} {'start':>7} {'end':>7} {'s':>6} worker  task")
    for row in TASKS:
        print(
            f"{row['submit'] - began:7.1f} {row['start'] - began:7.1f} {row['end'] - began:7.1f} "
            f"{row['end'] - row['start']:6.1f} {row['pid']:>6}  {row['what']}"
        )
    wall = ended - began
    print(f"plan_stage {wall:.1f} s wall, {cpu:.1f} CPU s (this process and workers)")
    for pid in sorted({row["pid"] for row in TASKS}):
        mine = [row for row in TASKS if row["pid"] == pid]
        busy = sum(row["end"] - row["start"] for row in mine)
        print(f"worker {pid}: {len(mine)} simulations, busy {busy:.1f} s, idle {wall - busy:.1f} s")
        moment = began
        for row in [*mine, {"start": ended, "end": ended}]:
            if row["start"] - moment > 1.0:
                others = [
                    other["what"]
                    for other in TASKS
                    if other["pid"] != pid and other["start"] < row["start"] and other["end"] > moment
                ]
                print(f"  idle {moment - began:7.1f}-{row['start'] - began:7.1f}: other worker runs {others}")
            moment = row["end"]
    print(f"load average (1 min) before {load:.1f}, after {os.getloadavg()[0]:.1f}; {os.cpu_count()} CPUs")
    print(f"peak memory {peak_rss_mib():,.0f} MiB (largest process)")
    print(f"simulator: {'compiled (mypyc)' if planner.compiled() else 'plain Python'}")
    if args.out:
        with args.out.open("w", encoding="utf-8") as out:
            out.write("submit\tstart\tend\tpid\twhat\n")
            for row in TASKS:
                out.write(
                    f"{row['submit'] - began:.2f}\t{row['start'] - began:.2f}\t{row['end'] - began:.2f}\t"
                    f"{row['pid']}\t{row['what']}\n"
                )


if __name__ == "__main__":
    main()
