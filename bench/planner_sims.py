"""Record the simulations of one planner run, then replay them one by one: CPU seconds and results.

``python bench/planner_sims.py record DIR -- --stage prod --shape week`` runs ``python -m planner`` with
those arguments in one process and stores every simulation it starts (setup, trace, warm-up, repricing
groups) with a digest of its results (planner.digest.result_digest). ``python bench/planner_sims.py
replay DIR [--only 0,3]`` runs the stored simulations again in this tree: the CPU seconds of each
(time.process_time, this process only) and whether its digest is the recorded one. Replaying the same
directory from two trees (one of them a previous version) compares the simulator's speed on exactly the
same simulations and checks that the results stayed bit-identical, without the rest of the plan.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import planner
import planner.plan as plan_module
from planner.digest import result_digest


def _digests(simulated: tuple[Any, Any]) -> list[dict[str, Any] | None]:
    return [None if result is None else result_digest(result) for result in simulated]


def record(folder: Path, planner_args: list[str]) -> None:
    from planner.cli import main as planner_main

    folder.mkdir(parents=True, exist_ok=True)
    original = plan_module.simulate_repriced
    traces: dict[int, Any] = {}  # id -> trace (kept alive so that ids stay unique)
    count = [0]

    def recording(setup: Any, trace: Any, progress: Any, warmup: int, reprice_as: Any) -> Any:
        key = id(trace)
        if key not in traces:
            traces[key] = trace
            with (folder / f"trace-{len(traces) - 1}.pickle").open("wb") as file:
                pickle.dump(trace, file, protocol=pickle.HIGHEST_PROTOCOL)
        trace_file = f"trace-{list(traces).index(key)}.pickle"
        started = time.process_time()
        simulated = original(setup, trace, progress, warmup, reprice_as)
        cpu = time.process_time() - started
        entry = {
            "setup": setup,
            "trace": trace_file,
            "warmup": warmup,
            "reprice_as": reprice_as,
            "digests": _digests(simulated),
            "requests": trace.size,
            "cpu": cpu,
        }
        with (folder / f"sim-{count[0]:03d}.pickle").open("wb") as file:
            pickle.dump(entry, file, protocol=pickle.HIGHEST_PROTOCOL)
        print(f"recorded sim {count[0]}: {trace.size:,} requests, {cpu:.2f} CPU-s", flush=True)
        count[0] += 1
        return simulated

    plan_module.simulate_repriced = recording  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as out:
        planner_main([*planner_args, "--workers", "1", "--out", out])


def replay(folder: Path, only: list[int] | None, repeat: int) -> int:
    files = sorted(folder.glob("sim-*.pickle"))
    total_cpu = 0.0
    total_requests = 0
    mismatches = 0
    loaded: dict[str, Any] = {}
    print(f"simulator: {'compiled (mypyc)' if planner.compiled() else 'plain Python'}")
    for index, path in enumerate(files):
        if only is not None and index not in only:
            continue
        with path.open("rb") as file:
            entry = pickle.load(file)  # noqa: S301 - files this script wrote
        if entry["trace"] not in loaded:
            with (folder / entry["trace"]).open("rb") as file:
                loaded[entry["trace"]] = pickle.load(file)  # noqa: S301 - files this script wrote
        trace = loaded[entry["trace"]]
        best = float("inf")
        for _ in range(repeat):
            started = time.process_time()
            simulated = plan_module.simulate_repriced(
                entry["setup"], trace, None, entry["warmup"], entry["reprice_as"]
            )
            best = min(best, time.process_time() - started)
        same = _digests(simulated) == entry["digests"]
        mismatches += not same
        total_cpu += best
        total_requests += entry["requests"]
        print(
            f"sim {index:3d}: {entry['requests']:>10,} requests {best:7.2f} CPU-s "
            f"(recorded {entry['cpu']:6.2f}) {'identical' if same else 'DIFFERENT'}",
            flush=True,
        )
    print(
        f"total: {total_requests:,} requests, {total_cpu:.2f} CPU-s, "
        f"{total_requests / max(total_cpu, 1e-9):,.0f} requests/CPU-s; {mismatches} different"
    )
    return 1 if mismatches else 0


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    recorder = sub.add_parser("record")
    recorder.add_argument("folder", type=Path)
    recorder.add_argument("planner_args", nargs=argparse.REMAINDER, help="arguments after --")
    replayer = sub.add_parser("replay")
    replayer.add_argument("folder", type=Path)
    replayer.add_argument("--only", help="comma-separated simulation numbers")
    replayer.add_argument("--repeat", type=int, default=1, help="runs of each; the least CPU counts")
    args = parser.parse_args()
    if args.command == "record":
        planner_args = args.planner_args[1:] if args.planner_args[:1] == ["--"] else args.planner_args
        record(args.folder, planner_args)
        return 0
    only = None if args.only is None else [int(part) for part in args.only.split(",")]
    return replay(args.folder, only, args.repeat)


if __name__ == "__main__":
    sys.exit(main())
