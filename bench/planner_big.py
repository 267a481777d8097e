"""A 27M-request week: one simulation per model under its configured policy, time and peak memory.

``python bench/planner_big.py --requests 27000000 [--tree DIR] [--model ID]`` builds a SYNTHETIC week of
that many requests from the bundled hour (``dense_week``: independently seeded ``week`` shapes of the
hour superposed, each arrival moved by a seeded uniform 0-60 s so the copies do not coincide, then
thinned to the count) and simulates the prod stage's configured policy on it, warm-up included, as
``make plan`` runs it. ``--tree`` imports the planner from another checkout (e.g. the previous version,
``git archive main | tar -x -C /tmp/old``) so both can be measured side by side on the same requests.
Prints CPU and wall seconds per simulation and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=27_000_000)
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--model", action="append", help="only this model id (repeatable)")
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
