"""A small fake of one vLLM OpenAI-compatible server (one model version), for loopback tests.

It answers /health, /v1/models, /v1/chat/completions and /v1/completions (plain and SSE
streaming), and /metrics with the vLLM series a load-aware router could read (vllm-router 0.1.17
reads none of them: it counts its own in-flight requests). Every completion names the instance
that served it, so a test can count where the router sent each request. `latency_seconds` holds
each response open that long, which is how a test makes one replica "loaded"; `chunk_interval_seconds`
spaces the streamed events, so a test can tell a stream passed through from one buffered whole.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.router_e2e.quiet_handler import QuietHandler

STREAM_CHUNKS = ("Hello", ", ", "world", "!")


class FakeVllm:
    """One fake replica serving `served_model_name`; `instance` names it in every response."""

    def __init__(
        self,
        *,
        served_model_name: str,
        instance: str,
        latency_seconds: float = 0.0,
        chunk_interval_seconds: float = 0.01,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.served_model_name = served_model_name
        self.instance = instance
        self.latency_seconds = latency_seconds
        self.chunk_interval_seconds = chunk_interval_seconds  # between two streamed events
        self.requests: Counter[str] = Counter()
        self.running = 0
        self.authorizations: list[str | None] = []  # the Authorization header of each completion
        self.lock = threading.Lock()
        # Any 127.0.0.0/8 address is loopback on Linux: discovery tests give each "pod" its own IP.
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeVllm:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def metrics_text(self) -> str:
        labels = f'model_name="{self.served_model_name}",engine="0"'
        with self.lock:
            running = self.running
        return (
            "# TYPE vllm:num_requests_running gauge\n"
            f"vllm:num_requests_running{{{labels}}} {running}\n"
            "# TYPE vllm:num_requests_waiting gauge\n"
            f"vllm:num_requests_waiting{{{labels}}} 0\n"
            "# TYPE vllm:kv_cache_usage_perc gauge\n"
            f"vllm:kv_cache_usage_perc{{{labels}}} 0.0\n"
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                with fake.lock:
                    fake.requests[self.path] += 1
                if self.path == "/health":
                    self._send(200, b"")
                elif self.path == "/v1/models":
                    self._json(
                        200,
                        {
                            "object": "list",
                            "data": [{"id": fake.served_model_name, "object": "model", "owned_by": "vllm"}],
                        },
                    )
                elif self.path == "/metrics":
                    self._send(200, fake.metrics_text().encode(), "text/plain; version=0.0.4")
                else:
                    self._json(404, {"error": {"message": "not found", "type": "NotFoundError", "code": 404}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake.lock:
                    fake.requests[self.path] += 1
                    fake.authorizations.append(self.headers.get("Authorization"))
                if self.path not in ("/v1/chat/completions", "/v1/completions"):
                    self._json(404, {"error": {"message": "not found", "type": "NotFoundError", "code": 404}})
                    return
                if body.get("model") != fake.served_model_name:
                    # vLLM answers a model it does not serve with 404 and an OpenAI error body.
                    self._json(
                        404,
                        {
                            "error": {
                                "message": f"The model `{body.get('model')}` does not exist.",
                                "type": "NotFoundError",
                                "param": "model",
                                "code": 404,
                            }
                        },
                    )
                    return
                with fake.lock:
                    fake.running += 1
                try:
                    time.sleep(fake.latency_seconds)
                    chat = self.path == "/v1/chat/completions"
                    if body.get("stream"):
                        self._stream(chat)
                    else:
                        self._json(200, self._completion(chat, "".join(STREAM_CHUNKS)))
                finally:
                    with fake.lock:
                        fake.running -= 1

            def _completion(self, chat: bool, text: str) -> dict[str, Any]:
                choice: dict[str, Any] = (
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    if chat
                    else {"index": 0, "text": text, "finish_reason": "stop"}
                )
                return {
                    "id": f"cmpl-{fake.instance}",
                    "object": "chat.completion" if chat else "text_completion",
                    "model": fake.served_model_name,
                    "system_fingerprint": fake.instance,
                    "choices": [choice],
                }

            def _stream(self, chat: bool) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for piece in STREAM_CHUNKS:
                    choice = (
                        {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                        if chat
                        else {"index": 0, "text": piece, "finish_reason": None}
                    )
                    event = {
                        "id": f"cmpl-{fake.instance}",
                        "object": "chat.completion.chunk" if chat else "text_completion",
                        "model": fake.served_model_name,
                        "system_fingerprint": fake.instance,
                        "choices": [choice],
                    }
                    self._chunk(f"data: {json.dumps(event)}\n\n".encode())
                    time.sleep(fake.chunk_interval_seconds)
                self._chunk(b"data: [DONE]\n\n")
                self._chunk(b"")

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        return Handler
