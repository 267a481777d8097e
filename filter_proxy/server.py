"""The filtering proxy: checks prompts before vLLM sees them and completions before clients do.

Settings come from the environment (set by k8s_charts/filter_sidecar.py). Run with
``python3 -m filter_proxy.server``.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from filter_proxy.guardrail import Direction, Guardrail, Verdict
from filter_proxy.openai_body import Setter, chunk_text, error_body, request_texts, response_texts

OUTPUT_PATHS = ("/v1/chat/completions", "/v1/completions")
READY_PATH = "/filter/ready"
METRICS_PATH = "/filter/metrics"
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
audit_log = logging.getLogger("filter_proxy.audit")


@dataclass(frozen=True)
class Settings:
    upstream_url: str
    port: int
    model_id: str
    check_output: bool
    stream_window_chars: int
    on_error: str
    shutdown_timeout_seconds: float
    api_key: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Settings:
        return cls(
            upstream_url=env.get("UPSTREAM_URL", "http://127.0.0.1:8000"),
            port=int(env.get("FILTER_PORT", "8080")),
            model_id=env.get("MODEL_ID", ""),
            check_output=env.get("CHECK_OUTPUT", "true") == "true",
            stream_window_chars=int(env.get("STREAM_WINDOW_CHARS", "400")),
            on_error=env.get("ON_ERROR", "block"),
            shutdown_timeout_seconds=float(env.get("SHUTDOWN_TIMEOUT_SECONDS", "60")),
            api_key=env.get("API_KEY") or None,
        )


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.interventions = Counter(
            "llm_guardrail_interventions",
            "Prompts and completions the guardrail blocked or anonymized, by rule.",
            ["direction", "outcome", "rule"],
            registry=registry,
        )
        self.errors = Counter(
            "llm_guardrail_errors",
            "ApplyGuardrail calls that failed or timed out.",
            ["direction"],
            registry=registry,
        )
        self.latency = Histogram(
            "llm_guardrail_check_seconds",
            "Time of one ApplyGuardrail call as the proxy sees it.",
            ["direction"],
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5),
            registry=registry,
        )


class GuardrailUnavailableError(Exception):
    pass


class FilterProxy:
    def __init__(self, *, settings: Settings, guardrail: Guardrail, metrics: Metrics) -> None:
        self.settings = settings
        self.guardrail = guardrail
        self.metrics = metrics
        self._session: ClientSession | None = None

    # --- plumbing -------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get(READY_PATH, self._ready)
        app.router.add_get(METRICS_PATH, self._metrics)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        return app

    async def _open(self, _: web.Application) -> None:
        # No total timeout: a long generation streams for minutes; connecting must be quick.
        self._session = ClientSession(
            timeout=ClientTimeout(total=None, sock_connect=5), auto_decompress=False
        )

    async def _close(self, _: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def _ready(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    @staticmethod
    def _forward_headers(request: web.Request) -> dict[str, str]:
        return {key: value for key, value in request.headers.items() if key.lower() not in HOP_BY_HOP}

    async def _upstream(self, request: web.Request, body: bytes) -> Any:
        assert self._session is not None
        return await self._session.request(
            request.method,
            self.settings.upstream_url + request.rel_url.raw_path_qs,
            data=body,
            headers=self._forward_headers(request),
        )

    @staticmethod
    def _reply_headers(upstream: Any) -> dict[str, str]:
        return {key: value for key, value in upstream.headers.items() if key.lower() not in HOP_BY_HOP}

    async def _relay(self, request: web.Request, upstream: Any) -> web.StreamResponse:
        response = web.StreamResponse(status=upstream.status, headers=self._reply_headers(upstream))
        await response.prepare(request)
        async for data in upstream.content.iter_any():
            await response.write(data)
        await response.write_eof()
        return response

    # --- the guardrail ---------------------------------------------------------------------

    async def _check(self, texts: list[str], direction: Direction) -> Verdict:
        started = time.perf_counter()
        try:
            return await self.guardrail.check(texts, source=direction)
        except Exception as error:
            self.metrics.errors.labels(direction.lower()).inc()
            raise GuardrailUnavailableError(type(error).__name__) from error
        finally:
            self.metrics.latency.labels(direction.lower()).observe(time.perf_counter() - started)

    def _record(
        self, *, verdict: Verdict, direction: Direction, digest: str, request_id: str, path: str
    ) -> None:
        outcome = "blocked" if verdict.blocked else "anonymized"
        for rule in verdict.rules:
            self.metrics.interventions.labels(direction.lower(), outcome, rule).inc()
        self._audit(
            outcome=outcome,
            rules=list(verdict.rules),
            direction=direction,
            digest=digest,
            request_id=request_id,
            path=path,
        )

    def _audit(
        self, *, outcome: str, rules: list[str], direction: Direction, digest: str, request_id: str, path: str
    ) -> None:
        # A hash of the request body, never its text: the audit trail must not become a PII store.
        audit_log.info(
            json.dumps(
                {
                    "event": "guardrail",
                    "outcome": outcome,
                    "direction": direction.lower(),
                    "rules": rules,
                    "model_id": self.settings.model_id,
                    "path": path,
                    "request_id": request_id,
                    "prompt_sha256": digest,
                },
                sort_keys=True,
            )
        )

    def _unavailable(
        self,
        error: GuardrailUnavailableError,
        *,
        direction: Direction,
        digest: str,
        request_id: str,
        path: str,
    ) -> web.Response | None:
        if self.settings.on_error == "allow":
            self._audit(
                outcome="allowed-unchecked",
                rules=[str(error)],
                direction=direction,
                digest=digest,
                request_id=request_id,
                path=path,
            )
            return None
        self._audit(
            outcome="refused-unchecked",
            rules=[str(error)],
            direction=direction,
            digest=digest,
            request_id=request_id,
            path=path,
        )
        return web.json_response(
            error_body(
                "The content filter is unavailable; try again.",
                code="guardrail_unavailable",
                error_type="service_unavailable",
            ),
            status=503,
        )

    def _authorized(self, request: web.Request) -> bool:
        """The bearer token vLLM's --api-key check expects (vLLM still checks it again)."""
        if self.settings.api_key is None:
            return True
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.settings.api_key}".encode())

    async def _screen(
        self,
        texts: list[tuple[str, Setter]],
        direction: Direction,
        *,
        digest: str,
        request_id: str,
        path: str,
    ) -> tuple[web.Response | None, bool]:
        """Checks a whole prompt or completion: (the refusal to send, or None; whether texts were masked
        in place through their setters)."""
        try:
            verdict = await self._check([text for text, _ in texts], direction)
        except GuardrailUnavailableError as error:
            refusal = self._unavailable(
                error, direction=direction, digest=digest, request_id=request_id, path=path
            )
            if refusal is not None:
                return refusal, False
            verdict = Verdict(blocked=False)
        if verdict.intervened:
            self._record(
                verdict=verdict, direction=direction, digest=digest, request_id=request_id, path=path
            )
        if verdict.blocked:
            what = "prompt" if direction == "INPUT" else "completion"
            message = f"The {what} was blocked by the content filter ({', '.join(verdict.rules)})."
            return web.json_response(error_body(message, code="content_filter"), status=400), False
        if verdict.anonymized and verdict.texts is not None:
            for (_, put), masked in zip(texts, verdict.texts, strict=True):
                put(masked)
            return None, True
        return None, False

    # --- requests --------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        if request.method != "POST" or not request.path.startswith("/v1/"):
            return await self._relay(request, await self._upstream(request, raw))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            # vLLM answers malformed JSON with its own 400; nothing here is text to check.
            return await self._relay(request, await self._upstream(request, raw))
        if not self._authorized(request):
            # vLLM would refuse it too, but only after the guardrail had been paid to screen it.
            return web.json_response(
                error_body("Invalid or missing API key.", code="invalid_api_key"), status=401
            )
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        digest = hashlib.sha256(raw).hexdigest()
        path = request.path
        refusal, masked = await self._screen(
            request_texts(body), "INPUT", digest=digest, request_id=request_id, path=path
        )
        if refusal is not None:
            return refusal
        if masked:
            raw = json.dumps(body).encode()
        upstream = await self._upstream(request, raw)
        try:
            if not self.settings.check_output or path not in OUTPUT_PATHS or upstream.status != 200:
                return await self._relay(request, upstream)
            if upstream.headers.get("Content-Type", "").startswith("text/event-stream"):
                return await self._stream(request, upstream, digest=digest, request_id=request_id)
            return await self._complete(request, upstream, digest=digest, request_id=request_id)
        finally:
            upstream.release()

    async def _complete(
        self, request: web.Request, upstream: Any, *, digest: str, request_id: str
    ) -> web.Response:
        payload = await upstream.read()
        body = json.loads(payload)
        refusal, masked = await self._screen(
            response_texts(body), "OUTPUT", digest=digest, request_id=request_id, path=request.path
        )
        if refusal is not None:
            return refusal
        if masked:
            payload = json.dumps(body).encode()
        headers = self._reply_headers(upstream)
        return web.Response(status=upstream.status, body=payload, headers=headers)

    # --- streams ---------------------------------------------------------------------------

    @staticmethod
    async def _events(upstream: Any) -> AsyncIterator[bytes]:
        """SSE events (without the blank line that ends each)."""
        lines: list[bytes] = []
        async for line in upstream.content:
            stripped = line.rstrip(b"\r\n")
            if stripped:
                lines.append(stripped)
            elif lines:
                yield b"\n".join(lines)
                lines = []
        if lines:
            yield b"\n".join(lines)

    @staticmethod
    def _data(event: bytes) -> str | None:
        data = [line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")]
        return b"\n".join(data).decode() if data else None

    @staticmethod
    def _sse(payload: Any) -> bytes:
        return b"data: " + (payload if isinstance(payload, bytes) else json.dumps(payload).encode()) + b"\n\n"

    async def _stream(
        self, request: web.Request, upstream: Any, *, digest: str, request_id: str
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers=self._reply_headers(upstream))
        await response.prepare(request)
        held: list[tuple[bytes, dict[str, Any] | None]] = []  # raw event, parsed chunk
        window = ""
        # The tail of the text already sent is checked again with the next window, so a phrase or
        # an entity split across two windows is still seen whole.
        overlap = ""
        last_chunk: dict[str, Any] = {}

        async def release() -> bool:
            """Check the held window; write it (or its masked form) and return True, or cut."""
            nonlocal window, held, overlap
            try:
                verdict = await self._check([overlap + window] if window else [], "OUTPUT")
            except GuardrailUnavailableError as error:
                if (
                    self._unavailable(
                        error, direction="OUTPUT", digest=digest, request_id=request_id, path=request.path
                    )
                    is not None
                ):
                    await self._cut(
                        response,
                        last_chunk,
                        "The content filter is unavailable.",
                        code="guardrail_unavailable",
                    )
                    return False
                verdict = Verdict(blocked=False)
            masked = None
            if verdict.anonymized and verdict.texts:
                if verdict.texts[0].startswith(overlap):
                    masked = verdict.texts[0][len(overlap) :]
                else:
                    # The entity began in text already sent: it cannot be masked any more.
                    verdict = Verdict(blocked=True, rules=(*verdict.rules, "redaction-after-send"))
            if verdict.intervened:
                self._record(
                    verdict=verdict,
                    direction="OUTPUT",
                    digest=digest,
                    request_id=request_id,
                    path=request.path,
                )
            if verdict.blocked:
                await self._cut(
                    response,
                    last_chunk,
                    "The completion was blocked by the content filter (" + ", ".join(verdict.rules) + ").",
                    code="content_filter",
                )
                return False
            for raw, chunk in held:
                if masked is not None and chunk is not None and chunk_text(chunk):
                    chunk = copy.deepcopy(chunk)
                    _set_chunk_text(chunk, masked)
                    masked = ""
                    await response.write(self._sse(chunk))
                else:
                    await response.write(raw + b"\n\n")
            sent = verdict.texts[0][len(overlap) :] if verdict.anonymized and verdict.texts else window
            overlap = sent[-(self.settings.stream_window_chars // 2) :]
            held, window = [], ""
            return True

        async for event in self._events(upstream):
            data = self._data(event)
            if data == "[DONE]":
                if not await release():
                    upstream.close()
                    return response
                await response.write(event + b"\n\n")
                continue
            chunk: dict[str, Any] | None = None
            try:
                parsed = json.loads(data) if data else None
                chunk = parsed if isinstance(parsed, dict) else None
            except ValueError:
                chunk = None
            if chunk is not None:
                window += chunk_text(chunk)
                last_chunk = chunk
            held.append((event, chunk))
            if len(window) >= self.settings.stream_window_chars and not await release():
                upstream.close()
                return response
        if held:
            await release()
        await response.write_eof()
        return response

    async def _cut(
        self, response: web.StreamResponse, last_chunk: dict[str, Any], message: str, *, code: str
    ) -> None:
        """End an unsafe stream: a final choice with finish_reason content_filter, an OpenAI error
        event, then [DONE]; the upstream connection is dropped, which aborts vLLM's request."""
        final: dict[str, Any] = {
            key: last_chunk[key] for key in ("id", "object", "created", "model") if key in last_chunk
        }
        is_chat = last_chunk.get("object") == "chat.completion.chunk"
        choice: dict[str, Any] = {"index": 0, "finish_reason": "content_filter"}
        if is_chat:
            choice["delta"] = {}
        else:
            choice["text"] = ""
        final["choices"] = [choice]
        await response.write(self._sse(final))
        await response.write(self._sse(error_body(message, code=code)))
        await response.write(self._sse(b"[DONE]"))
        await response.write_eof()


def _set_chunk_text(chunk: dict[str, Any], text: str) -> None:
    choice = chunk["choices"][0]
    if isinstance(choice.get("delta"), dict):
        choice["delta"]["content"] = text
    else:
        choice["text"] = text


def build_client(*, region: str, endpoint_url: str | None, timeout_seconds: float) -> Any:
    """A bedrock-runtime client; credentials come from EKS Pod Identity (container provider)."""
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    return session.create_client(
        "bedrock-runtime",
        region_name=region,
        endpoint_url=endpoint_url or None,
        config=Config(
            connect_timeout=timeout_seconds,
            read_timeout=timeout_seconds,
            retries={"max_attempts": 2, "mode": "standard"},
            max_pool_connections=64,
        ),
    )


def build(env: dict[str, str]) -> tuple[FilterProxy, Settings]:
    settings = Settings.from_env(env)
    timeout = float(env.get("GUARDRAIL_TIMEOUT_SECONDS", "2"))
    client = build_client(
        region=env["AWS_REGION"], endpoint_url=env.get("GUARDRAIL_ENDPOINT_URL"), timeout_seconds=timeout
    )
    guardrail = Guardrail(
        client=client,
        identifier=env["GUARDRAIL_ID"],
        version=env["GUARDRAIL_VERSION"],
        timeout_seconds=timeout,
    )
    return FilterProxy(settings=settings, guardrail=guardrail, metrics=Metrics(CollectorRegistry())), settings


def main() -> None:
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    proxy, settings = build(dict(os.environ))
    # SIGTERM: stop accepting, then let in-flight streams finish within the shutdown timeout.
    web.run_app(
        proxy.app(),
        port=settings.port,
        shutdown_timeout=settings.shutdown_timeout_seconds,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
