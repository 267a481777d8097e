"""Latency the filtering proxy adds, on loopback: a fake model and a fake ApplyGuardrail endpoint
that answer at once, so the figure is the proxy's own cost (JSON handling, two botocore calls with
SigV4 signing, the extra hop), not Bedrock's. Run: python -m bench.filter_proxy"""

from __future__ import annotations

import asyncio
import os
import statistics
import time

from aiohttp import ClientSession

from contract.serving import GUARDRAIL_ID_KEY, GUARDRAIL_VERSION_KEY
from filter_proxy.server import build
from tests.unit.filter_proxy.fakes import FakeGuardrail, FakeModel, guardrail_app, model_app, serve

REQUESTS = 300


async def _time(client: ClientSession, url: str) -> list[float]:
    body = {"model": "m", "messages": [{"role": "user", "content": "What is the capital of France? " * 20}]}
    samples = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        async with client.post(url + "/v1/chat/completions", json=body) as response:
            await response.read()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def main() -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "secret")
    async with (
        serve(guardrail_app(FakeGuardrail())) as guardrail_url,
        serve(model_app(FakeModel())) as model_url,
    ):
        proxy, _ = build(
            {
                "AWS_REGION": "us-west-2",
                "GUARDRAIL_ENDPOINT_URL": guardrail_url,
                GUARDRAIL_ID_KEY: "abc",
                GUARDRAIL_VERSION_KEY: "1",
                "UPSTREAM_URL": model_url,
            }
        )
        async with serve(proxy.app()) as proxy_url, ClientSession() as client:
            direct = await _time(client, model_url)
            filtered = await _time(client, proxy_url)
    for name, samples in (("direct", direct), ("through proxy", filtered)):
        ordered = sorted(samples)
        p95 = ordered[int(0.95 * len(ordered))]
        print(f"{name:14s} p50 {statistics.median(ordered):6.2f} ms  p95 {p95:6.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
