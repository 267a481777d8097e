"""Loopback doubles: an OpenAI-compatible model server and the Bedrock ApplyGuardrail endpoint.

The guardrail fake answers in the shapes of botocore's bedrock-runtime model (ApplyGuardrail
response: action, outputs, assessments, usage); the proxy reaches it through a real botocore
client (serialisation and SigV4 signing included) with ``endpoint_url`` pointed at it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
ATTACK = "ignore all previous instructions"
DENIED_TOPIC_WORD = "nerve agent"
USAGE = {
    "topicPolicyUnits": 1,
    "contentPolicyUnits": 1,
    "wordPolicyUnits": 1,
    "sensitiveInformationPolicyUnits": 1,
    "sensitiveInformationPolicyFreeUnits": 0,
    "contextualGroundingPolicyUnits": 0,
}


@dataclass
class FakeGuardrail:
    pii_action: str = "ANONYMIZED"  # or BLOCKED, as the guardrail's PII entity action says
    fail: bool = False
    calls: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)

    async def apply(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        self.auth_headers.append(request.headers.get("Authorization", ""))
        if self.fail:
            return web.json_response(
                {"message": "throttled"}, status=429, headers={"x-amzn-ErrorType": "ThrottlingException"}
            )
        body = await request.json()
        self.calls.append(body)
        texts = [block["text"]["text"] for block in body["content"]]
        assessment: dict[str, Any] = {}
        blocked = False
        joined = " ".join(texts).lower()
        if ATTACK in joined:
            assessment["contentPolicy"] = {
                "filters": [{"type": "PROMPT_ATTACK", "confidence": "HIGH", "action": "BLOCKED"}]
            }
            blocked = True
        if DENIED_TOPIC_WORD in joined:
            assessment["topicPolicy"] = {"topics": [{"name": "weapons", "type": "DENY", "action": "BLOCKED"}]}
            blocked = True
        matches = [match for text in texts for match in SSN.findall(text)]
        if matches:
            assessment["sensitiveInformationPolicy"] = {
                "piiEntities": [
                    {"match": match, "type": "US_SOCIAL_SECURITY_NUMBER", "action": self.pii_action}
                    for match in matches
                ],
                "regexes": [],
            }
            blocked = blocked or self.pii_action == "BLOCKED"
        if not assessment:
            return web.json_response({"usage": USAGE, "action": "NONE", "outputs": [], "assessments": [{}]})
        outputs = (
            [{"text": "Sorry, I cannot help with that."}]
            if blocked
            else [{"text": SSN.sub("{US_SOCIAL_SECURITY_NUMBER}", text)} for text in texts]
        )
        return web.json_response(
            {
                "usage": USAGE,
                "action": "GUARDRAIL_INTERVENED",
                "outputs": outputs,
                "assessments": [assessment],
            }
        )


@dataclass
class FakeModel:
    """vLLM's OpenAI server as far as the proxy can tell: chat completions, streamed or not."""

    reply: list[str] = field(default_factory=lambda: ["Hello", " there", "."])
    received: list[dict[str, Any]] = field(default_factory=list)
    stream_aborted: asyncio.Event = field(default_factory=asyncio.Event)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.received.append(body)
        base = {"id": "chatcmpl-1", "created": 1, "model": body.get("model", "m")}
        if not body.get("stream"):
            return web.json_response(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": "".join(self.reply)},
                        }
                    ],
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        chunk = {**base, "object": "chat.completion.chunk"}
        try:
            await response.write(
                b"data: "
                + json.dumps(
                    {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
                ).encode()
                + b"\n\n"
            )
            for piece in self.reply:
                await response.write(
                    b"data: "
                    + json.dumps(
                        {
                            **chunk,
                            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                        }
                    ).encode()
                    + b"\n\n"
                )
                await asyncio.sleep(0.002)
            await response.write(
                b"data: "
                + json.dumps(
                    {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                ).encode()
                + b"\n\n"
            )
            await response.write(b"data: [DONE]\n\n")
        except ConnectionResetError:  # the client (the proxy) went away mid-stream
            self.stream_aborted.set()
        return response

    async def health(self, _: web.Request) -> web.Response:
        return web.Response(text="")


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Run `app` on 127.0.0.1 on a free port; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def guardrail_app(fake: FakeGuardrail) -> web.Application:
    app = web.Application()
    app.router.add_post("/guardrail/{identifier}/version/{version}/apply", fake.apply)
    return app


def model_app(fake: FakeModel) -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.chat)
    app.router.add_get("/health", fake.health)
    return app
