"""A 27M-request week: one simulation per model under its configured policy, or the whole comparison;
time and peak memory.

``python bench/planner_big.py --requests 27000000 [--tree DIR] [--model ID]`` builds a SYNTHETIC week of
that many requests from the bundled hour (``dense_week``: independently seeded ``week`` shapes of the
hour superposed, each arrival moved by a seeded uniform 0-60 s so the copies do not coincide, then
thinned to the count) and simulates the prod stage's configured policy on it, warm-up included, as
``make plan`` runs it. ``--tree`` imports the planner from another checkout (e.g. the previous version,
``git archive main | tar -x -C /tmp/old``) so both can be measured side by side on the same requests.
Prints CPU and wall seconds per simulation and the process's peak resident memory.

``--comparison [--workers 2]`` runs the whole prod comparison on that week instead (``plan_stage`` with
every policy, the fitted re-plans and the first pass, lean results, as ``make plan`` runs it without
the report and plot) and prints its wall and CPU seconds (this process and its children), each
simulation's CPU seconds, the progress bar's total against the requests it counted, and the memory
of the process tree sampled every second from /proc: the peak of the summed VmRSS (counts pages
shared by fork in every process that maps them) and of the summed Pss (each shared page split between
the processes that map it: the tree's real footprint), and each process's peak VmRSS.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import math
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np


class TreeMemory:
    """Samples the memory of this process and all its descendants from /proc every ``interval`` s."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.root = os.getpid()
        self.peak_rss = 0  # KiB, summed over the tree
        self.peak_pss = 0
        self.peak_by_pid: dict[int, int] = {}
        self.samples = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    @staticmethod
    def _field(path: str, name: str) -> int:
        try:
            with open(path) as handle:
                for line in handle:
                    if line.startswith(name):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _tree(self) -> list[int]:
        parents: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
        tree, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo += parents.get(pid, [])
        return tree

    def sample(self) -> None:
        rss = pss = 0
        for pid in self._tree():
            one = self._field(f"/proc/{pid}/status", "VmRSS:")
            rss += one
            pss += self._field(f"/proc/{pid}/smaps_rollup", "Pss:")
            self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0), one)
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
        self.samples += 1

    def _loop(self) -> None:
        while not self.stopping.wait(self.interval):
            self.sample()

    def __enter__(self) -> TreeMemory:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join()


def timed(work: Callable[..., Any], log: Path) -> Callable[..., Any]:
    """``work`` (what a pool worker runs) that appends its CPU and wall seconds to ``log``."""

    @functools.wraps(work)
    def run(setup: Any, replay: Any, *rest: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        found = work(setup, replay, *rest)
        scaling = setup.autoscaling
        what = scaling.kind
        if scaling.kind == "hpa":
            metric = "queue" if scaling.queue_target else "kv" if scaling.kv_target else "gpu"
            what = f"hpa:{metric}" + ("" if setup.groups[0].spot else ",on-demand")
        if setup.routing is not None:
            what += f",routing:{setup.routing.policy}"
        record = {
            "what": what,
            "requests": int(getattr(replay, "size", 0)),
            "cpu": time.process_time() - cpu,
            "wall": time.perf_counter() - wall,
            "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "pid": os.getpid(),
        }
        with log.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        return found

    return run


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def comparison(stage: Any, week: Any, models: list[str] | None, workers: int) -> None:
    """The whole comparison on ``week`` (see the module's docstring)."""
    import planner.plan as plan
    from planner.settings import PlannerSettings

    settings = PlannerSettings()
    log = Path(tempfile.mkdtemp(prefix="planner-big-")) / "runs.jsonl"
    # The pool's workers are forked after this, so they run the timed stand-in (the previous tree's
    # worker function is simulate_repriced).
    name = "simulate_replay" if hasattr(plan, "simulate_replay") else "simulate_repriced"
    setattr(plan, name, timed(getattr(plan, name), log))
    fitted = "fit_load" in inspect.signature(plan.expected_requests).parameters
    total = plan.expected_requests(stage, week, settings, models, *((1, True) if fitted else ()))
    counted = [0, 0]
    memory = TreeMemory()
    began_wall, began_cpu = time.perf_counter(), time.process_time()

    def progress(step: int) -> None:
        counted[0] += step
        if counted[0] - counted[1] >= 50_000_000:
            counted[1] = counted[0]
            print(
                f"  {counted[0] / 1e6:,.0f} M of {total / 1e6:,.0f} M requests, "
                f"{time.perf_counter() - began_wall:.0f} wall s, "
                f"{time.process_time() - began_cpu + _children_cpu():.0f} CPU s so far (finished children); "
                f"peak summed VmRSS {memory.peak_rss / 1024:,.0f} MiB, Pss {memory.peak_pss / 1024:,.0f} MiB",
                flush=True,
            )

    lean = {"lean": True} if "lean" in inspect.signature(plan.plan_stage).parameters else {}
    # The planning process's peak from here on (the trace's construction above is not the planner's).
    Path("/proc/self/clear_refs").write_text("5")
    with memory:
        plans = plan.plan_stage(stage, week, settings, 1, models, progress, True, workers, **lean)
        memory.sample()
    wall = time.perf_counter() - began_wall
    own_cpu = time.process_time() - began_cpu
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    print(f"{len(runs)} simulations (first pass included):")
    for run in runs:
        print(
            f"  {run['what']:<40} {run['requests']:>12,} requests {run['cpu']:7.1f} CPU s "
            f"({run['requests'] / max(run['cpu'], 1e-9):,.0f}/s) {run['wall']:7.1f} wall s; "
            f"worker {run['pid']} peak {run['maxrss_mib']:,.0f} MiB"
        )
    simulated = sum(run["cpu"] for run in runs)
    peaks = sorted(memory.peak_by_pid.items(), key=lambda item: -item[1])
    print(
        f"whole comparison ({', '.join(plan.title for plan in plans)}): {wall:.0f} s wall; CPU "
        f"{own_cpu + children.ru_utime + children.ru_stime:.0f} s = planning process {own_cpu:.0f} + "
        f"children {children.ru_utime + children.ru_stime:.0f} ({simulated:.0f} of it in simulations); "
        f"progress counted {counted[0]:,} of a {total:,} total ({counted[0] / total:.1%}); "
        f"memory of the process tree ({memory.samples} samples): peak summed VmRSS "
        f"{memory.peak_rss / 1024:,.0f} MiB, peak summed Pss {memory.peak_pss / 1024:,.0f} MiB; "
        f"planning process peak {TreeMemory._field('/proc/self/status', 'VmHWM:') / 1024:,.0f} MiB "
        f"(VmHWM since plan_stage began); per process peak VmRSS "
        + ", ".join(f"{'planning' if pid == os.getpid() else pid} {kib / 1024:,.0f}" for pid, kib in peaks)
        + f" MiB; load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )


def write_csv(week: Any, path: Path) -> None:
    """The week in the simple CSV format (arrivals to the millisecond), a million rows at a time."""
    with path.open("w", encoding="utf-8") as out:
        out.write("arrival_seconds,prompt_tokens,output_tokens\n")
        for first in range(0, week.size, 1_000_000):
            rows = zip(
                week.arrival[first : first + 1_000_000].tolist(),
                week.prompt_tokens[first : first + 1_000_000].tolist(),
                week.output_tokens[first : first + 1_000_000].tolist(),
                strict=True,
            )
            out.write("".join(f"{arrival:.3f},{prompt},{output}\n" for arrival, prompt, output in rows))
    print(f"wrote {week.size:,} requests to {path}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=27_000_000)
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--model", action="append", help="only this model id (repeatable)")
    parser.add_argument("--comparison", action="store_true", help="run the whole comparison (plan_stage)")
    parser.add_argument("--workers", type=int, default=2, help="with --comparison: pool processes")
    parser.add_argument(
        "--write-csv",
        type=Path,
        help="only write the week as a simple-format CSV (to time the command line on it, loading included)",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree.resolve()))
    os.chdir(args.tree)

    import planner
    from config import load_stages
    from planner.clock import resolve_start
    from planner.plan import simulate
    from planner.policies import base_setup, common_start_replicas
    from planner.settings import PlannerSettings
    from planner.trace import DEFAULT_TRACE, Trace, in_zone, load_trace, restart, shape, with_warmup

    def dense_week(hour: Trace, requests: int, seed: int) -> Trace:
        one = shape(hour, "week", seed)
        copies = math.ceil(requests / one.size)
        weeks = [one] + [shape(hour, "week", seed + copy) for copy in range(1, copies)]
        rng = np.random.default_rng(seed)
        arrival = np.concatenate([week.arrival for week in weeks])
        arrival = np.minimum(arrival + rng.uniform(0, 60, arrival.size), one.duration_seconds - 1e-3)
        order = np.argsort(arrival, kind="stable")
        keep = np.sort(rng.choice(order.size, size=requests, replace=False))
        pick = order[keep]
        return replace(
            one,
            arrival=arrival[pick],
            prompt_tokens=np.concatenate([week.prompt_tokens for week in weeks])[pick],
            output_tokens=np.concatenate([week.output_tokens for week in weeks])[pick],
            synthetic_steps=(
                *one.synthetic_steps,
                f"{copies} seeded weeks superposed, arrivals moved by up to 60 s, {requests:,} kept",
            ),
        )

    stage = load_stages()[args.stage]
    recorded = load_trace(DEFAULT_TRACE)
    start = resolve_start(None, recorded.start, stage.offhours)
    hour = in_zone(restart(recorded, start), stage.offhours.timezone)
    began = time.perf_counter()
    week = dense_week(hour, args.requests, seed=1)
    print(
        f"tree {args.tree}: built {week.size:,} requests over {week.duration_seconds / 86400:.1f} d "
        f"in {time.perf_counter() - began:.1f} s (SYNTHETIC); simulator "
        f"{'compiled (mypyc)' if getattr(planner, 'compiled', lambda: False)() else 'plain Python'}",
        flush=True,
    )
    if args.write_csv:
        write_csv(week, args.write_csv)
        return
    if args.comparison:
        comparison(stage, week, args.model, args.workers)
        return
    settings = PlannerSettings()
    extended, warmup = with_warmup(week, settings.warmup_seconds)
    for model in stage.models:
        if args.model and model.id not in args.model:
            continue
        version = model.versions[0]
        configured = base_setup(stage, model, version, extended, settings, seed=1)
        setup = replace(
            configured,
            measure_from_seconds=extended.duration_seconds - week.duration_seconds,
            initial_replicas=common_start_replicas(week, configured.profile, settings.warmup_seconds, 0.7),
        )
        wall, cpu = time.perf_counter(), time.process_time()
        done = [0, 0]

        def progress(step: int, wall: float = wall, cpu: float = cpu, done: list[int] = done) -> None:
            done[0] += step
            if done[0] - done[1] >= 2_000_000:  # a line now and then, so a long run shows its rate
                done[1] = done[0]
                spent = time.process_time() - cpu
                print(
                    f"  {done[0]:,} requests: {spent:.0f} CPU s ({done[0] / spent:,.0f}/s), "
                    f"{time.perf_counter() - wall:.0f} wall s, peak "
                    f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB",
                    flush=True,
                )

        result = simulate(setup, extended, progress, warmup)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        served = int(np.count_nonzero(result.outcome == 1))
        print(
            f"{model.id}: {extended.size:,} simulated requests, {cpu:.0f} CPU s "
            f"({extended.size / cpu:,.0f}/s), "
            f"{wall:.0f} wall s; served {served:,}; peak memory "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB; "
            f"load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
