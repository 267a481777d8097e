"""Start the real vllm-router (the pinned PyPI package's launcher) on loopback and talk to it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STARTUP_SECONDS = 60
REQUEST_SECONDS = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Terminate a test's server process, killing it if it does not exit within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def launcher() -> str:
    """The `vllm-router` console script installed beside this interpreter (requirements-dev.txt)."""
    path = Path(sys.executable).with_name("vllm-router")
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: install requirements-dev.txt (vllm-router is pinned there)"
        )
    return str(path)


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    url: str, method: str = "GET", body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> Response:
    request = urllib.request.Request(  # noqa: S310 - loopback http only
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_SECONDS) as response:  # noqa: S310
            return Response(response.status, response.headers.get("Content-Type", ""), response.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, error.headers.get("Content-Type", ""), error.read())


class Router:
    """One router process in Inference Gateway (multi-model) mode with the given policy."""

    def __init__(
        self,
        *,
        policy: str,
        log_path: Path,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.metrics_port = free_port()
        self.log = log_path.open("wb")
        args = [
            launcher(),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--prometheus-host", "127.0.0.1",
            "--prometheus-port", str(self.metrics_port),
            "--enable-igw",
            "--policy", policy,
            "--health-check-interval-secs", "5",
            *(extra_args or []),
        ]  # fmt: skip
        # No in-cluster or user Kubernetes config leaks in: discovery talks only to a test's fake API.
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("KUBERNETES_") and key != "KUBECONFIG"
        }
        environment["KUBECONFIG"] = os.devnull
        environment.update(env or {})
        self.process = subprocess.Popen(  # noqa: S603
            args, stdout=self.log, stderr=subprocess.STDOUT, env=environment
        )
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vllm-router exited with {self.process.returncode}; see {self.log.name}")
            try:
                if call(f"{self.url}/health").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"vllm-router not ready within {STARTUP_SECONDS} s; see {self.log.name}")

    def add_worker(self, url: str) -> dict[str, Any]:
        """Register a worker the way the platform does: by URL; the router asks it for its model."""
        response = call(f"{self.url}/workers", "POST", {"url": url})
        assert response.status == 200, response.body
        worker: dict[str, Any] = response.json()["worker"]
        return worker

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
        return call(f"{self.url}{path}", "POST", body, headers)

    def get(self, path: str) -> Response:
        return call(f"{self.url}{path}")

    def metrics(self) -> str:
        return call(f"http://127.0.0.1:{self.metrics_port}/metrics").body.decode()

    def stop(self) -> None:
        if self.process.poll() is not None:
            self.log.close()
            return
        stop_process(self.process)
        self.log.close()
