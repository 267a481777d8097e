"""Wall time of `cdk synth`: all stages, and one stage, median of several runs.

Run: make bench-synth (or .venv/bin/python bench/synth.py [--runs N]). Prints figures; not a test.
Uses the pinned CLI from node_modules, like `make synth`, with CloudFormation validation on.
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
        [str(CDK), "synth", "--quiet", "--output", str(outdir), *selector],
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
    cases = {"all stages": [], "one stage (dev)": ["dev/*"]}
    print(f"cdk synth wall time, median of {runs} runs ({os.cpu_count()} CPUs)")
    for label, selector in cases.items():
        times = [timed_synth(selector) for _ in range(runs)]
        print(
            f"  {label:<16} median {statistics.median(times):6.2f} s  "
            f"(min {min(times):.2f}, max {max(times):.2f})"
        )


if __name__ == "__main__":
    main()
