"""Run the planner of this tree and of a previous version side by side, under the same load.

``python bench/planner_compare.py --old /tmp/old -- --stage prod --shape week --workers 2`` starts
``python -m planner <args>`` in both trees at the same moment (the machine is shared, so one after the
other would compare two different loads) and prints, per tree: wall time, CPU time (user + system of
the process and its children, from wait4), the peak resident memory of the largest process and of the
whole process tree (sampled from /proc every 0.2 s, Linux), and the load average before and after.
The previous version: a copy of its tree, e.g. ``git archive main | tar -x -C /tmp/old``, with a
``.venv`` (a link to this one's is fine).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Run:
    name: str
    tree: Path
    process: subprocess.Popen[bytes] | None = None
    wall: float = 0.0
    cpu: float = 0.0
    largest_mib: float = 0.0
    tree_mib: float = 0.0
    code: int | None = None
    tail: list[str] = field(default_factory=list)


def _children() -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        found.setdefault(parent, []).append(int(entry))
    return found


def _rss_mib(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20
    except OSError:
        return 0.0


def _sample(runs: list[Run], done: threading.Event) -> None:
    while not done.is_set():
        children = _children()
        for run in runs:
            if run.process is None or run.code is not None:
                continue
            tree, stack = [], [run.process.pid]
            while stack:
                pid = stack.pop()
                tree.append(pid)
                stack += children.get(pid, [])
            sizes = [_rss_mib(pid) for pid in tree]
            run.largest_mib = max(run.largest_mib, max(sizes))
            run.tree_mib = max(run.tree_mib, sum(sizes))
        time.sleep(0.2)


def _wait(run: Run, started: float) -> None:
    assert run.process is not None
    _, status, usage = os.wait4(run.process.pid, 0)
    run.wall = time.perf_counter() - started
    run.cpu = usage.ru_utime + usage.ru_stime
    run.code = os.waitstatus_to_exitcode(status)
    assert run.process.stdout is not None
    run.tail = run.process.stdout.read().decode(errors="replace").splitlines()[-3:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old", type=Path, required=True, help="tree of the previous version")
    parser.add_argument("planner_args", nargs=argparse.REMAINDER, help="arguments after --")
    args = parser.parse_args()
    planner_args = [arg for arg in args.planner_args if arg != "--"]
    here = Path(__file__).resolve().parent.parent
    runs = [Run("previous", args.old.resolve()), Run("this tree", here)]
    load_before = os.getloadavg()
    done = threading.Event()
    sampler = threading.Thread(target=_sample, args=(runs, done), daemon=True)
    started = time.perf_counter()
    for run in runs:
        run.process = subprocess.Popen(
            [
                str(run.tree / ".venv" / "bin" / "python"),
                "-m",
                "planner",
                *planner_args,
                "--no-progress",
                "--out",
                tempfile.mkdtemp(prefix="planner-compare-"),
            ],
            cwd=run.tree,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    sampler.start()
    waiters = [threading.Thread(target=_wait, args=(run, started)) for run in runs]
    for waiter in waiters:
        waiter.start()
    for waiter in waiters:
        waiter.join()
    done.set()
    load_after = os.getloadavg()
    print(f".venv/bin/python -m planner {' '.join(planner_args)}   (both started together)")
    print(
        f"load average before {load_before[0]:.1f} {load_before[1]:.1f} {load_before[2]:.1f}; "
        f"after {load_after[0]:.1f} {load_after[1]:.1f} {load_after[2]:.1f}"
    )
    print(f"{'tree':10} {'exit':>4} {'wall s':>8} {'CPU s':>8} {'largest MiB':>12} {'tree MiB':>9}")
    for run in runs:
        print(
            f"{run.name:10} {run.code:>4} {run.wall:8.1f} {run.cpu:8.1f} {run.largest_mib:12,.0f} "
            f"{run.tree_mib:9,.0f}"
        )
        for line in run.tail:
            print(f"    {line}")
    sys.exit(max(run.code or 0 for run in runs))


if __name__ == "__main__":
    main()
