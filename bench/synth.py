"""Wall time of `cdk synth`: all stages, and one stage, median of several runs.

Run: make bench-synth (or .venv/bin/python bench/synth.py [--runs N]). Prints figures; not a test.
Uses the pinned CLI from node_modules as `make synth` and `make synth STAGE=dev` do (one stage is
`-c stage=dev`: the app builds only that stage), with CloudFormation validation on. The two cases
alternate run by run, so a change in machine load hits both alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CDK = ROOT / "node_modules" / ".bin" / "cdk"


def timed_synth(selector: list[str]) -> float:
    outdir = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    started = time.perf_counter()
    subprocess.run(
        [str(CDK), "--no-lookups", "synth", "--quiet", "--no-notices", "--output", str(outdir), *selector],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - started
    shutil.rmtree(outdir, ignore_errors=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    cases = {"all stages": [], "one stage (dev)": ["-c", "stage=dev"]}
    load = os.getloadavg()[0]
    print(f"cdk synth wall time, median of {runs} runs ({os.cpu_count()} CPUs, load average {load:.1f})")
    times: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(runs):
        for label, selector in cases.items():
            times[label].append(timed_synth(selector))
    for label, measured in times.items():
        print(
            f"  {label:<16} median {statistics.median(measured):6.2f} s  "
            f"(min {min(measured):.2f}, max {max(measured):.2f})"
        )


if __name__ == "__main__":
    main()
