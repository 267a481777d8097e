"""The dashboard upload speaks Grafana's dashboard API (checked against a loopback fake)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from config import load_stages
from observability.dashboard import grafana_dashboard
from observability.grafana_push import push

received: list[dict[str, Any]] = []


class FakeGrafana(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        received.append({"path": self.path, "auth": self.headers["Authorization"], "body": body})
        uid = body["dashboard"]["uid"]
        reply = json.dumps({"status": "success", "uid": uid, "url": f"/d/{uid}", "version": 2}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def grafana() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGrafana)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_push_overwrites_the_dashboard_by_uid(grafana: str) -> None:
    received.clear()
    dashboard = grafana_dashboard(load_stages()["prod"])
    result = push(dashboard, grafana_url=grafana, token="t0ken", message="test")
    assert result["uid"] == "llm-inference-prod"
    (request,) = received
    assert request["path"] == "/api/dashboards/db"
    assert request["auth"] == "Bearer t0ken"
    assert request["body"]["overwrite"] is True
    assert request["body"]["dashboard"]["id"] is None  # by uid, never a stale numeric id
    assert request["body"]["dashboard"]["panels"] == dashboard["panels"]


def test_plain_http_is_refused_except_on_loopback() -> None:
    with pytest.raises(ValueError, match="use https://"):
        push({}, grafana_url="http://grafana.example.com", token="t", message="m")
