"""Drain benchmark for the Spot interruption handler (issue 5). Prints figures; not a test.

Scenario: a node with 110 pods (the default max pods), 10 of them behind a PodDisruptionBudget
that answers 429 three times before allowing the eviction, served by the in-process HTTPS fake
of the Kubernetes API with 20 ms added to every call. The handler runs end to end (EC2 and STS
in moto), once with parallel evictions and once one at a time. Also prints the handler modules'
cold import time and the size of each function's deployment asset.

Run: .venv/bin/python bench/drain.py
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # `lambdas` and the `k8s_fake` test double

BUDGET_SECONDS = 120.0
PODS, GUARDED, PDB_429S, LATENCY = 110, 10, 3, 0.020
FUNCTIONS = ("spot_interruption", "offhours_scaler")


class Context:
    function_name = "bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 130_000


def drain_once(concurrency: int) -> tuple[float, int, dict[str, Any]]:
    from k8s_fake import FakeKubernetes, make_node, make_pod

    from contract.events import EC2_SOURCE, SPOT_INTERRUPTION_WARNING
    from lambdas.common import clients
    from lambdas.common.clients import aws_client
    from lambdas.spot_interruption import handler as spot

    clients.reset()
    instance = aws_client("ec2").run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, Placement={"AvailabilityZone": "us-east-1a"}
    )["Instances"][0]
    with FakeKubernetes(latency=LATENCY) as api:
        node = instance["PrivateDnsName"]
        api.add_node(make_node(node, instance["InstanceId"], az="us-east-1a"))
        for i in range(PODS):
            api.add_pod(make_pod(f"pod-{i}", node), pdb_429s=PDB_429S if i < GUARDED else 0)
        os.environ.update(
            CLUSTER_NAME="bench",
            CLUSTER_ENDPOINT=api.endpoint,
            CLUSTER_CA_DATA=api.ca_data,
            EVICTION_CONCURRENCY=str(concurrency),
        )
        event = {
            "version": "0",
            "id": f"bench-{concurrency}",
            "detail-type": SPOT_INTERRUPTION_WARNING,
            "source": EC2_SOURCE,
            "account": "123456789012",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": "us-east-1",
            "resources": [],
            "detail": {"instance-id": instance["InstanceId"], "instance-action": "terminate"},
        }
        started = time.perf_counter()
        summary: dict[str, Any] = spot.handler(event, Context())
        elapsed = time.perf_counter() - started
        return elapsed, len(api.calls), summary


def import_ms(code: str, runs: int = 5) -> tuple[float, float, float]:
    """Median and minimum total import time of running `code`, and the median self time of our
    own `lambdas.*` and `contract.*` modules, in ms. Tracing is on, as in Lambda (Powertools then imports the
    X-Ray SDK)."""
    env = {k: v for k, v in os.environ.items() if k != "POWERTOOLS_TRACE_DISABLED"}
    samples, own = [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        total = ours = 0
        for line in out.splitlines():
            parts = line.split("|")
            if len(parts) != 3 or not parts[1].strip().isdigit():
                continue  # the header line
            # top-level modules have exactly one space of indentation after the last '|'
            if not parts[2].startswith("  "):
                total += int(parts[1])
            if parts[2].strip().startswith(("lambdas", "contract")):
                ours += int(parts[0].split(":")[1])
        samples.append(total / 1000)
        own.append(ours / 1000)
    return statistics.median(samples), min(samples), statistics.median(own)


def asset_sizes(function: str) -> tuple[int, int, int]:
    """Files, raw bytes and zipped bytes of lambdas/{__init__,common,<function>} and contract/ (no caches)."""
    files = [ROOT / "lambdas" / "__init__.py", *sorted((ROOT / "contract").glob("*.py"))]
    for folder in ("common", function):
        files += sorted(p for p in (ROOT / "lambdas" / folder).rglob("*.py") if "__pycache__" not in p.parts)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(ROOT).as_posix())
    return len(files), sum(p.stat().st_size for p in files), len(buffer.getvalue())


def main() -> None:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - moto
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_NAMESPACE="Bench",
    )
    from moto import mock_aws

    ms = LATENCY * 1000
    print(f"Drain: {PODS} pods, {GUARDED} behind a PDB (429 x{PDB_429S}), {ms:.0f} ms/call")
    print(f"{'mode':<14}{'seconds':>9}{'API calls':>11}{'of 120 s':>10}{'evicted':>9}{'pending':>9}")
    with mock_aws():
        for label, concurrency in (("parallel (32)", 32), ("one at a time", 1)):
            # stdout carries the handler's EMF metrics: keep the table readable.
            real_stdout, sys.stdout = sys.stdout, io.StringIO()
            try:
                seconds, calls, summary = drain_once(concurrency)
            finally:
                sys.stdout = real_stdout
            print(
                f"{label:<14}{seconds:>9.2f}{calls:>11}{seconds / BUDGET_SECONDS:>10.1%}"
                f"{summary['evicted']:>9}{summary['pending']:>9}"
            )
    print("Target: parallel drain under 5% of the budget (6 s).\n")

    print("Cold import (python -X importtime, median/min of 5 runs; target < 300 ms)")
    base, base_low, _ = import_ms(
        "from aws_lambda_powertools import Logger, Metrics, Tracer; Tracer(); import botocore.exceptions"
    )
    print(f"  {'baseline: Powertools + X-Ray SDK + botocore':<44}{base:>6.0f} ms (min {base_low:.0f})")
    for function in FUNCTIONS:
        module = f"lambdas.{function}.handler"
        median, low, own = import_ms(f"import {module}")
        with_boto, _, _ = import_ms(f"import {module}, boto3")
        print(
            f"  {module:<44}{median:>6.0f} ms (min {low:.0f}; own modules {own:.0f}),"
            f" +boto3 {with_boto:.0f} ms"
        )
    print("  (boto3 is imported on the first client request, not at module import)")
    print()
    print("Deployment asset (lambdas/__init__.py + common/ + the function's folder + contract/)")
    for function in FUNCTIONS:
        count, raw, zipped = asset_sizes(function)
        kib, zipped_kib = raw / 1024, zipped / 1024
        print(f"  {function:<20}{count:>3} files {kib:>6.1f} KiB raw {zipped_kib:>6.1f} KiB zipped")


if __name__ == "__main__":
    main()
