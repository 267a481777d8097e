"""The preStop drain script, run as the kubelet runs it, against a fake vLLM /metrics on loopback.

The fake serves vLLM's exposition format (gauges per engine, as v0.33.0 labels them) and lets a
test change the number of running requests while the script polls. Times are scaled down
(seconds instead of minutes); the script's logic does not depend on the scale.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from k8s_charts import pre_stop_drain
from k8s_charts.model_endpoint import DRAIN_SCRIPT


class FakeVllm:
    """running/waiting gauges; `broken` serves a page without them."""

    def __init__(self) -> None:
        self.running = 0
        self.waiting = 0
        self.broken = False
        self.scrapes = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.scrapes += 1
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                body = fake.page().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def page(self) -> str:
        if self.broken:
            return "# HELP python_info Python platform information\npython_info 1.0\n"
        labels = 'engine="0",model_name="llama"'
        return (
            "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
            "# TYPE vllm:num_requests_running gauge\n"
            f"vllm:num_requests_running{{{labels}}} {float(self.running)}\n"
            "# TYPE vllm:num_requests_waiting gauge\n"
            f"vllm:num_requests_waiting{{{labels}}} {float(self.waiting)}\n"
            # A gauge with a longer name of the same prefix must not be counted.
            f'vllm:num_requests_waiting_by_reason{{{labels},reason="capacity"}} 7.0\n'
            "# TYPE vllm:generation_tokens counter\n"
            f"vllm:generation_tokens_total{{{labels}}} 1234.0\n"
        )

    def set_running_later(self, seconds: float, running: int) -> None:
        def change() -> None:
            self.running = running

        threading.Timer(seconds, change).start()


@pytest.fixture
def fake() -> Iterator[FakeVllm]:
    server = FakeVllm()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def run_hook(port: int, *, min_wait: float, deadline: float, interval: float = 0.1) -> tuple[float, str]:
    """The script as a separate process, exactly as the preStop exec runs it."""
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603 - our own script with fixed arguments
        [
            sys.executable,
            str(DRAIN_SCRIPT),
            "--port",
            str(port),
            "--min-wait",
            str(min_wait),
            "--deadline",
            str(deadline),
            "--interval",
            str(interval),
        ],
        capture_output=True,
        text=True,
        timeout=deadline + 20,
        check=True,
    )
    return time.monotonic() - started, result.stdout


def test_waits_while_requests_run_and_returns_when_they_finish(fake: FakeVllm) -> None:
    fake.running = 3
    fake.set_running_later(2.0, 0)
    elapsed, out = run_hook(fake.port, min_wait=0.2, deadline=15)
    assert "idle" in out
    assert elapsed >= 2.0  # did not return while the three requests were running
    assert elapsed < 5.0  # returned soon after they finished, long before the deadline
    assert fake.scrapes > 3


def test_waiting_requests_also_hold_the_pod(fake: FakeVllm) -> None:
    fake.waiting = 2

    def admitted_and_done() -> None:
        fake.waiting = 0

    threading.Timer(1.5, admitted_and_done).start()
    elapsed, out = run_hook(fake.port, min_wait=0.1, deadline=15)
    assert "idle" in out
    assert 1.5 <= elapsed < 5.0


def test_gives_up_at_the_deadline_while_requests_still_run(fake: FakeVllm) -> None:
    fake.running = 1
    elapsed, out = run_hook(fake.port, min_wait=0.2, deadline=2.0)
    assert "deadline" in out
    # Returned by the deadline (plus process start-up), so the engine's teardown still fits the
    # grace period the chart derives: deadline + TEARDOWN_SECONDS.
    assert 1.5 <= elapsed < 2.0 + 1.5


def test_idle_server_is_released_right_after_the_propagation_wait(fake: FakeVllm) -> None:
    elapsed, out = run_hook(fake.port, min_wait=1.0, deadline=15)
    assert "idle" in out
    assert 1.0 <= elapsed < 3.0  # the minimum wait always happens: the ALB may still send requests


def test_unreadable_metrics_count_as_busy_until_the_deadline(fake: FakeVllm) -> None:
    fake.broken = True
    elapsed, out = run_hook(fake.port, min_wait=0.1, deadline=1.5)
    assert "deadline" in out
    assert elapsed >= 1.2


def test_a_server_that_is_gone_releases_the_hook_at_once() -> None:
    probe = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = probe.server_address[1]
    probe.server_close()  # nothing listens on the port any more: connection refused
    elapsed, out = run_hook(port, min_wait=0.1, deadline=15)
    assert "idle" in out
    assert elapsed < 3.0


def test_in_flight_sums_every_engine_and_ignores_other_series() -> None:
    page = (
        'vllm:num_requests_running{engine="0"} 2.0\n'
        'vllm:num_requests_running{engine="1"} 1.0\n'
        'vllm:num_requests_waiting{engine="0"} 4.0\n'
        'vllm:num_requests_waiting_by_reason{engine="0",reason="capacity"} 9.0\n'
    )
    assert pre_stop_drain.in_flight(page) == 7.0
    assert pre_stop_drain.in_flight('vllm:num_requests_running{engine="0"} 0.0\n') is None
