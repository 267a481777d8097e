"""The simulator's hot path compiled (mypyc, ``make install``) or plain Python: the same results.

The golden digest tests run whichever path this interpreter loads (compiled after ``make install``);
the plain path is checked here in a subprocess that leaves the compiled build off the package path.
The held-request count the compiled and plain replica keep for the load balancer is checked against
the pods' queues after an overloaded run.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import planner
from planner.entities import Outcome, Pod
from planner.sim import Simulation
from tests.unit.planner.conftest import make_profile, make_setup, poisson_trace
from tests.unit.planner.test_planner_golden import GOLDEN, _differences

ROOT = Path(__file__).resolve().parents[3]
PLAIN_DIGEST = """
import json, sys
import planner
planner.__path__[:] = [path for path in planner.__path__ if not path.endswith("planner-compiled/planner")]
from planner.digest import case_digest
assert not planner.compiled(), "the compiled build is still on the path"
print(json.dumps(case_digest("dev-short")))
"""


def test_plain_python_gives_the_recorded_digest() -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", PLAIN_DIGEST], cwd=ROOT, capture_output=True, text=True, check=True
    )
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))["dev-short"]
    differences = _differences(expected, json.loads(done.stdout))
    assert not differences, "\n".join(differences[:20])


def test_a_build_of_other_sources_is_not_loaded(tmp_path: Path) -> None:
    source = tmp_path / "replica.py"
    source.write_text("x = 1\n", encoding="utf-8")
    (tmp_path / "sources.json").write_text(
        json.dumps({"replica.py": hashlib.sha256(source.read_bytes()).hexdigest()}), encoding="utf-8"
    )
    assert planner.compiled_is_current(tmp_path, tmp_path)
    source.write_text("x = 2\n", encoding="utf-8")  # edited after the build
    assert not planner.compiled_is_current(tmp_path, tmp_path)
    (tmp_path / "sources.json").unlink()  # no build
    assert not planner.compiled_is_current(tmp_path, tmp_path)


def _outstanding(pod: Pod) -> int:
    in_step = {request for request, _ in pod.prefill_batch}
    partial = 1 if pod.partial >= 0 and pod.partial not in in_step else 0
    return len(pod.waiting) + len(pod.running) + len(pod.prefill_batch) + partial


def test_each_pods_held_count_is_what_it_holds_after_an_overloaded_run() -> None:
    # Small KV cache, a small token budget and a short timeout: preemptions, chunked prompts and
    # timeouts all happen, and the horizon ends with requests queued and running.
    trace = poisson_trace(12.0, 400.0, seed=3)
    profile = make_profile(kv_capacity_tokens=20_000, max_prefill_tokens=512, max_num_seqs=16)
    setup = make_setup(profile, replicas=3, horizon=300.0, request_timeout_seconds=30)
    sim = Simulation(setup, trace.arrival, trace.prompt_tokens, trace.output_tokens)
    sim.run()
    outcome = np.frombuffer(sim.outcome, dtype=np.int8)
    assert sim.preemptions > 0
    assert np.count_nonzero(outcome == Outcome.DROPPED_TIMEOUT) > 0
    assert [pod.held for pod in sim.pods] == [_outstanding(pod) for pod in sim.pods]
    arrived = trace.arrival <= setup.horizon_seconds
    in_flight = int(np.count_nonzero((outcome == Outcome.IN_FLIGHT) & arrived))
    assert in_flight > 0
    assert sum(pod.held for pod in sim.pods) == in_flight
