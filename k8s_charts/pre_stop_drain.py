"""preStop hook of the vLLM container: wait until in-flight requests are done, then let SIGTERM come.

Runs inside the vllm/vllm-openai image with its python3 and the standard library only; the chart
mounts this file from a ConfigMap. Exit status is always 0: a failing hook would only add a
FailedPreStopHook event, and SIGTERM follows either way.

    python3 pre_stop_drain.py --port 8000 --min-wait 15 --deadline 135

1. Sleep `--min-wait` seconds while the load balancer stops sending new requests.
2. Poll http://127.0.0.1:<port>/metrics every `--interval` seconds and return as soon as
   vllm:num_requests_running + vllm:num_requests_waiting is 0, the server is gone (connection
   refused), or `--deadline` seconds have passed since the hook started.
   An unreadable or incomplete /metrics answer counts as busy: cutting a stream is the worse error.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable

BUSY_GAUGES = ("vllm:num_requests_running", "vllm:num_requests_waiting")


def in_flight(metrics_text: str) -> float | None:
    """Requests running plus waiting, summed over label sets; None when a gauge is missing."""
    totals: dict[str, float] = {}
    for line in metrics_text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in BUSY_GAUGES:
            totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[-1])
    if set(totals) != set(BUSY_GAUGES):
        return None
    return sum(totals.values())


def read_in_flight(url: str, timeout: float) -> float | None:
    """In-flight requests; 0.0 when nothing listens any more; None when unknown."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URL
            return in_flight(response.read().decode("utf-8", "replace"))
    except urllib.error.URLError as error:
        if isinstance(error.reason, ConnectionRefusedError):
            return 0.0
        return None
    except (OSError, ValueError):
        return None


def drain(
    *,
    url: str,
    min_wait: float,
    deadline: float,
    interval: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = print,
) -> str:
    """Wait as described above; returns why it stopped ("idle", "deadline")."""
    start = clock()
    sleep(min_wait)
    while True:
        busy = read_in_flight(url, timeout=min(interval, 5.0))
        elapsed = clock() - start
        if busy == 0:
            log(f"pre-stop drain: idle after {elapsed:.0f}s")
            return "idle"
        if elapsed + interval > deadline:
            log(f"pre-stop drain: deadline {deadline:.0f}s reached with {busy} requests in flight")
            return "deadline"
        sleep(interval)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--min-wait", type=float, required=True)
    parser.add_argument("--deadline", type=float, required=True)
    parser.add_argument("--interval", type=float, default=2.0)
    args = parser.parse_args(argv)
    drain(
        url=f"http://127.0.0.1:{args.port}/metrics",
        min_wait=args.min_wait,
        deadline=args.deadline,
        interval=args.interval,
        log=lambda message: print(message, flush=True),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
