"""The stdlib Kubernetes client: TLS against the cluster CA, typed errors, pooling, threads."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
from k8s_fake import FakeKubernetes, make_node, make_pod, make_tls_material
from lambda_fakes import StaticToken

from lambdas.common.k8s import (
    ConflictError,
    ForbiddenError,
    K8sClient,
    K8sError,
    NotFoundError,
    ServerError,
    TooManyRequestsError,
    UnauthorizedError,
    UnreachableError,
    ssl_context_from_ca_data,
)


def client_for(api: FakeKubernetes, token: StaticToken | None = None) -> K8sClient:
    return K8sClient(api.endpoint, ssl_context_from_ca_data(api.ca_data), token or StaticToken())


def test_tls_is_verified_against_the_cluster_ca(k8s: FakeKubernetes) -> None:
    other_ca = make_tls_material().ca_data
    client = K8sClient(k8s.endpoint, ssl_context_from_ca_data(other_ca), StaticToken())
    with pytest.raises(UnreachableError, match="CERTIFICATE_VERIFY_FAILED"):
        client.list_nodes()
    assert client_for(k8s).list_nodes() == []


def test_ca_data_must_be_base64_pem() -> None:
    with pytest.raises(ValueError, match="base64"):
        ssl_context_from_ca_data("not base64!")


def test_connections_are_reused(k8s: FakeKubernetes) -> None:
    client = client_for(k8s)
    for _ in range(20):
        client.list_nodes()
    assert k8s.connections == 1


def test_a_dropped_keep_alive_connection_is_replaced(k8s: FakeKubernetes) -> None:
    client = client_for(k8s)
    client.list_nodes()
    k8s.drop_connections()
    assert client.list_nodes() == []
    assert k8s.connections == 2


def test_parallel_calls_are_thread_safe(k8s: FakeKubernetes) -> None:
    k8s.latency = 0.01
    for i in range(40):
        k8s.add_pod(make_pod(f"p{i}", "n1"))
    client = client_for(k8s)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: client.evict_pod("models", f"p{i}"), range(40)))
    assert k8s.pods == {}
    assert k8s.max_in_flight > 1
    assert k8s.connections <= 8


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (403, ForbiddenError),
        (404, NotFoundError),
        (409, ConflictError),
        (429, TooManyRequestsError),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_statuses_map_to_typed_errors(k8s: FakeKubernetes, status: int, error: type[K8sError]) -> None:
    k8s.failures[("GET", "/api/v1/nodes/n1")] = status
    with pytest.raises(error) as info:
        client_for(k8s).get_node("n1")
    assert info.value.status == status


def test_401_refreshes_the_token_once_then_raises(k8s: FakeKubernetes) -> None:
    token = StaticToken()
    k8s.add_node(make_node("n1", "i-1"))
    k8s.reject_tokens = 1
    assert client_for(k8s, token).get_node("n1")["metadata"]["name"] == "n1"
    assert token.invalidations == 1
    k8s.reject_tokens = 2
    with pytest.raises(UnauthorizedError):
        client_for(k8s, token).get_node("n1")


def test_token_without_eks_prefix_is_rejected(k8s: FakeKubernetes) -> None:
    with pytest.raises(UnauthorizedError):
        client_for(k8s, StaticToken("not-a-k8s-token")).list_nodes()


def test_unreachable_endpoint_is_a_typed_error(tls: object) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens on this port now
    ca = make_tls_material().ca_data
    client = K8sClient(f"https://localhost:{port}", ssl_context_from_ca_data(ca), StaticToken())
    with pytest.raises(UnreachableError):
        client.list_nodes()


def test_field_selector_lists_only_the_nodes_pods(k8s: FakeKubernetes) -> None:
    k8s.add_pod(make_pod("a", "n1"))
    k8s.add_pod(make_pod("b", "n2"))
    names = [p["metadata"]["name"] for p in client_for(k8s).list_pods_on_node("n1")]
    assert names == ["a"]
    assert "fieldSelector=spec.nodeName%3Dn1" in k8s.calls[-1][2]


def test_throttled_get_is_retried_briefly(k8s: FakeKubernetes) -> None:
    k8s.add_node(make_node("n1", "i-1"))
    k8s.queued_failures[("GET", "/api/v1/nodes/n1")] = [429, 429]
    waits: list[float] = []
    client = K8sClient(k8s.endpoint, ssl_context_from_ca_data(k8s.ca_data), StaticToken(), sleep=waits.append)
    assert client.get_node("n1")["metadata"]["name"] == "n1"
    assert len(waits) == 2


def test_throttled_get_gives_up_after_three_attempts(k8s: FakeKubernetes) -> None:
    k8s.failures[("GET", "/api/v1/nodes/n1")] = 429
    client = K8sClient(
        k8s.endpoint, ssl_context_from_ca_data(k8s.ca_data), StaticToken(), sleep=lambda _: None
    )
    with pytest.raises(TooManyRequestsError):
        client.get_node("n1")
    assert len(k8s.calls) == 3


def test_eviction_429_is_left_to_the_caller(k8s: FakeKubernetes) -> None:
    k8s.add_pod(make_pod("p", "n1"), pdb_429s=1)
    with pytest.raises(TooManyRequestsError):
        client_for(k8s).evict_pod("models", "p")
    assert len(k8s.calls) == 1
