"""End to end on loopback: the real vllm-router (pinned in requirements-dev.txt) in front of fake vLLMs.

What the platform relies on in `model` routing, checked against the released router rather than
its documentation: routing by the body's `model` (chat and completions), streaming passed through
intact, the model list, an unknown model's error, the split between two versions of one model, and
that a load-aware policy sends less to a slow replica. Every router and server binds 127.0.0.1.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.router_e2e.fake_openai import STREAM_CHUNKS, FakeVllm
from tests.router_e2e.pod_api_fake import PodApiFake, pod
from tests.router_e2e.router_process import Router, free_port

# The pinned release has Linux wheels only (requirements-dev.txt installs it on Linux, where CI runs).
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="vllm-router publishes Linux wheels only")

LLAMA = "llama-3-1-8b"
QWEN = "qwen-2-5-7b"
UNKNOWN = "no-such-model"
REQUESTS = 40


def chat(model: str, *, stream: bool = False, prompt: str = "hi") -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": stream}


@pytest.fixture(scope="module")
def fleet() -> Iterator[dict[str, FakeVllm]]:
    servers = {
        "llama-v1": FakeVllm(served_model_name=LLAMA, instance="llama-v1").start(),
        "qwen-v1": FakeVllm(served_model_name=QWEN, instance="qwen-v1").start(),
    }
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def router(fleet: dict[str, FakeVllm], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    instance = Router(policy="cache_aware", log_path=tmp_path_factory.mktemp("router") / "router.log")
    try:
        for server in fleet.values():
            instance.add_worker(server.url)
        yield instance
    finally:
        instance.stop()


def test_workers_register_under_the_model_they_serve(fleet: dict[str, FakeVllm], router: Router) -> None:
    workers = router.get("/workers").json()["workers"]
    assert {worker["url"]: worker["model_id"] for worker in workers} == {
        fleet["llama-v1"].url: LLAMA,
        fleet["qwen-v1"].url: QWEN,
    }


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_requests_reach_the_server_of_the_model_they_name(
    path: str, fleet: dict[str, FakeVllm], router: Router
) -> None:
    before = {name: server.requests[path] for name, server in fleet.items()}
    served: Counter[tuple[str, str]] = Counter()
    for index in range(REQUESTS):
        model = (LLAMA, QWEN)[index % 2]
        body = chat(model) if path.endswith("chat/completions") else {"model": model, "prompt": "hi"}
        response = router.post(path, body)
        assert response.status == 200, response.body
        served[(model, response.json()["system_fingerprint"])] += 1
    assert served == {(LLAMA, "llama-v1"): REQUESTS // 2, (QWEN, "qwen-v1"): REQUESTS // 2}
    assert {name: server.requests[path] - before[name] for name, server in fleet.items()} == {
        "llama-v1": REQUESTS // 2,
        "qwen-v1": REQUESTS // 2,
    }


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_streaming_passes_through_intact(path: str, router: Router) -> None:
    body = chat(QWEN, stream=True)
    if path.endswith("/v1/completions"):
        body = {"model": QWEN, "prompt": "hi", "stream": True}
    response = router.post(path, body)
    assert response.status == 200
    assert response.content_type.startswith("text/event-stream")
    events = [line.removeprefix("data: ") for line in response.body.decode().split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    key = "delta" if path.endswith("chat/completions") else None
    pieces = [chunk["choices"][0][key]["content"] if key else chunk["choices"][0]["text"] for chunk in chunks]
    assert pieces == list(STREAM_CHUNKS)
    assert {chunk["system_fingerprint"] for chunk in chunks} == {"qwen-v1"}


def test_model_list_names_every_served_model(router: Router) -> None:
    # vllm-router 0.1.17 answers with its own shape, not OpenAI's {"object": "list", "data": [...]}:
    # pinned here because docs/serving.md tells clients what to expect.
    response = router.get("/v1/models")
    assert response.status == 200
    assert sorted(response.json()["models"]) == [LLAMA, QWEN]


def test_unknown_model_gets_an_openai_style_404(fleet: dict[str, FakeVllm], router: Router) -> None:
    # The router has no worker for the model, forwards to one of the others, and passes through
    # that vLLM's 404 "model does not exist" error: the body is vLLM's, not the router's.
    response = router.post("/v1/chat/completions", chat(UNKNOWN))
    assert response.status == 404
    error = response.json()["error"]
    assert error["type"] == "NotFoundError"
    assert UNKNOWN in error["message"]


def test_client_api_key_reaches_vllm_unchanged(fleet: dict[str, FakeVllm], router: Router) -> None:
    # The router does not check or strip the client's bearer token: vLLM's own API key check
    # (VLLM_API_KEY) stays the single place a key is verified in `model` mode.
    response = router.post("/v1/chat/completions", chat(QWEN), {"Authorization": "Bearer sk-test-key"})
    assert response.status == 200
    assert fleet["qwen-v1"].authorizations[-1] == "Bearer sk-test-key"


def test_static_worker_urls_are_ignored_in_multi_model_mode(
    fleet: dict[str, FakeVllm], tmp_path: Path
) -> None:
    # In --enable-igw mode 0.1.17 registers workers only through POST /workers (or discovery):
    # --worker-urls is silently ignored; in a cluster the workers come from pod discovery (tested below).
    router = Router(
        policy="round_robin",
        log_path=tmp_path / "router.log",
        extra_args=["--worker-urls", fleet["qwen-v1"].url],
    )
    try:
        workers = router.get("/workers").json()
        models = router.get("/v1/models")
    finally:
        router.stop()
    assert workers["total"] == 0
    assert models.body == b"No models available"


def test_router_counts_requests_and_errors_by_route(router: Router) -> None:
    # Its own traffic, so the test holds alone or after any other (pytest -k, xdist's split): the router
    # creates the route's request counter on the first routed request, the error counter on an error.
    assert router.post("/v1/chat/completions", chat(LLAMA)).status == 200
    router.post("/v1/chat/completions", chat(UNKNOWN))
    metrics = router.metrics()
    assert 'vllm_router_requests_total{route="/v1/chat/completions"}' in metrics
    assert 'vllm_router_request_errors_total{route="/v1/chat/completions"' in metrics
    assert "vllm_router_worker_health{" in metrics


def wait_for_workers(router: Router, *, count: int, seconds: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while True:
        workers: list[dict[str, Any]] = router.get("/workers").json()["workers"]
        if len(workers) >= count or time.monotonic() > deadline:
            return workers
        time.sleep(0.2)


def served_by(router: Router, model: str, count: int, *, concurrency: int) -> Counter[str]:
    def one(_: int) -> str:
        response = router.post("/v1/chat/completions", chat(model, prompt=f"request {_}"))
        assert response.status == 200, response.body
        return str(response.json()["system_fingerprint"])

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return Counter(pool.map(one, range(count)))


def test_versions_of_one_model_share_traffic_by_replica_count(tmp_path: Path) -> None:
    """The router has no per-version weight: it spreads a model's requests over all its workers.

    With three replicas of v1 and one of v2, v2 receives a quarter: this is the replica-ratio
    canary that docs/serving.md describes (and why config weights are not honoured by this router).
    """
    servers = [FakeVllm(served_model_name=LLAMA, instance="v1").start() for _ in range(3)]
    servers.append(FakeVllm(served_model_name=LLAMA, instance="v2").start())
    router = Router(policy="round_robin", log_path=tmp_path / "router.log")
    try:
        for server in servers:
            router.add_worker(server.url)
        total = 200
        counts = served_by(router, LLAMA, total, concurrency=1)
    finally:
        router.stop()
        for server in servers:
            server.stop()
    assert counts["v2"] / total == pytest.approx(0.25, abs=0.05)
    assert counts["v1"] + counts["v2"] == total


@pytest.mark.parametrize(("policy", "at_most"), [("power_of_two", 0.30), ("cache_aware", 0.30)])
def test_load_aware_policy_sends_less_to_a_loaded_replica(
    policy: str, at_most: float, tmp_path: Path
) -> None:
    # "loaded": each request holds the replica for 0.4 s, so its requests pile up in flight.
    loaded = FakeVllm(served_model_name=QWEN, instance="loaded", latency_seconds=0.4).start()
    idle = FakeVllm(served_model_name=QWEN, instance="idle").start()
    router = Router(policy=policy, log_path=tmp_path / "router.log")
    try:
        router.add_worker(loaded.url)
        router.add_worker(idle.url)
        counts = served_by(router, QWEN, REQUESTS, concurrency=8)
        baseline = Router(policy="round_robin", log_path=tmp_path / "baseline.log")
        try:
            baseline.add_worker(loaded.url)
            baseline.add_worker(idle.url)
            round_robin = served_by(baseline, QWEN, REQUESTS, concurrency=8)
        finally:
            baseline.stop()
    finally:
        router.stop()
        loaded.stop()
        idle.stop()
    assert round_robin["loaded"] == REQUESTS // 2  # the control: load-blind policy, even split
    assert counts["loaded"] / REQUESTS <= at_most


def test_cache_aware_policy_keeps_a_shared_prefix_on_one_replica(tmp_path: Path) -> None:
    servers = [FakeVllm(served_model_name=LLAMA, instance=f"r{index}").start() for index in range(2)]
    router = Router(policy="cache_aware", log_path=tmp_path / "router.log")
    try:
        for server in servers:
            router.add_worker(server.url)
        system = "You are a careful assistant for the billing team. " * 20
        replicas = {
            router.post("/v1/chat/completions", chat(LLAMA, prompt=f"{system} question {index}")).json()[
                "system_fingerprint"
            ]
            for index in range(10)
        }
    finally:
        router.stop()
        for server in servers:
            server.stop()
    assert len(replicas) == 1


def test_kubernetes_discovery_registers_pods_under_the_model_they_serve(tmp_path: Path) -> None:
    """--service-discovery in multi-model mode: pods found by label, each registered by its model.

    The pods are two fake vLLMs on their own loopback IPs (127.0.0.2 and .3, one shared port, as pods
    share the container port); the API is a list-and-watch fake with a real TLS handshake.
    """
    port = free_port()
    servers = {
        LLAMA: FakeVllm(served_model_name=LLAMA, instance="llama-pod", host="127.0.0.2", port=port).start(),
        QWEN: FakeVllm(served_model_name=QWEN, instance="qwen-pod", host="127.0.0.3", port=port).start(),
    }
    labels = {"app.kubernetes.io/name": "vllm"}
    api = PodApiFake(
        [
            pod(name="llama-pod", ip="127.0.0.2", labels=labels),
            pod(name="qwen-pod", ip="127.0.0.3", labels=labels),
            pod(name="other-app", ip="127.0.0.4", labels={"app.kubernetes.io/name": "other"}),
        ]
    ).start()
    router = Router(
        policy="round_robin",
        log_path=tmp_path / "router.log",
        extra_args=[
            "--service-discovery",
            "--selector",
            "app.kubernetes.io/name=vllm",
            "--service-discovery-namespace",
            "models",
            "--service-discovery-port",
            str(port),
        ],
        env={"KUBECONFIG": str(api.kubeconfig(tmp_path / "kubeconfig"))},
    )
    try:
        workers = wait_for_workers(router, count=2)
        served = {
            model: router.post("/v1/chat/completions", chat(model)).json()["system_fingerprint"]
            for model in (LLAMA, QWEN)
        }
    finally:
        router.stop()
        api.stop()
        for server in servers.values():
            server.stop()
    assert {worker["url"]: worker["model_id"] for worker in workers} == {
        f"http://127.0.0.2:{port}": LLAMA,
        f"http://127.0.0.3:{port}": QWEN,
    }
    assert served == {LLAMA: "llama-pod", QWEN: "qwen-pod"}
    assert any("watch=true" in path for path in api.paths)  # it watches, not only lists once


def test_sigterm_lets_an_in_flight_stream_finish(tmp_path: Path) -> None:
    # Graceful shutdown: a rolling update of the router must not cut a stream that is under way.
    server = FakeVllm(served_model_name=QWEN, instance="slow", latency_seconds=1.5).start()
    router = Router(policy="round_robin", log_path=tmp_path / "router.log")
    try:
        router.add_worker(server.url)
        with ThreadPoolExecutor(max_workers=1) as pool:
            streaming = pool.submit(router.post, "/v1/chat/completions", chat(QWEN, stream=True))
            time.sleep(0.5)  # the request is in flight: the server holds it 1.5 s before streaming
            router.process.send_signal(signal.SIGTERM)
            response = streaming.result(timeout=20)
        exit_code = router.process.wait(timeout=20)
    finally:
        router.stop()
        server.stop()
    assert response.status == 200
    assert response.body.decode().endswith("data: [DONE]\n\n")
    assert exit_code == 0
