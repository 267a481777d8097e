"""The slice of the Kubernetes API that vllm-router's pod discovery uses: list and watch pods.

HTTPS on 127.0.0.1 with a throw-away CA (tests/k8s_fake/certs.py). A list returns the pods given at
construction; a watch answers 200 and then stays silent until the server stops, as a quiet cluster
does. Every request path is recorded so a test can show what the router asked for.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.k8s_fake.certs import make_tls_material
from tests.router_e2e.quiet_handler import QuietHandler

TOKEN = "router-discovery-test-token"


def pod(*, name: str, ip: str, labels: dict[str, str], namespace: str = "models") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "uid": name,
            "resourceVersion": "1",
        },
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


class PodApiFake:
    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods = pods
        self.paths: list[str] = []
        self.tls = make_tls_material()
        self.stopping = threading.Event()
        context = self.tls.server_context()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def kubeconfig(self, path: Path) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "fake",
                    "cluster": {"server": self.url, "certificate-authority-data": self.tls.ca_data},
                }
            ],
            "users": [{"name": "router", "user": {"token": TOKEN}}],
            "contexts": [
                {"name": "fake", "context": {"cluster": "fake", "user": "router", "namespace": "models"}}
            ],
            "current-context": "fake",
        }
        path.write_text(json.dumps(config))
        return path

    def start(self) -> PodApiFake:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                fake.paths.append(self.path)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._json(401, {"kind": "Status", "code": 401, "reason": "Unauthorized"})
                    return
                if not self.path.startswith("/api/v1/namespaces/models/pods"):
                    self._json(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                    return
                if "watch=" in self.path:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.flush()
                    fake.stopping.wait(timeout=60)
                    return
                self._json(
                    200,
                    {
                        "kind": "PodList",
                        "apiVersion": "v1",
                        "metadata": {"resourceVersion": "1"},
                        "items": fake.pods,
                    },
                )

        return Handler
