"""A small Kubernetes REST client on the standard library.

Why not the `kubernetes` package: it is not on the Lambda runtime, it is large, and it imports
slowly. The handlers need a dozen calls; this client does those over pooled keep-alive HTTPS
connections, verifies TLS against the cluster CA, and is safe to share between threads (each
request borrows its own connection from the pool).
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import queue
import ssl
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

# The error classes are re-exported so callers import everything Kubernetes from one module.
from contract.functions import CLUSTER_CA_DATA_ENV
from lambdas.common.errors import (
    ConflictError,
    ForbiddenError,
    K8sError,
    NotFoundError,
    ServerError,
    TooManyRequestsError,
    UnauthorizedError,
    UnexpectedStatusError,
    UnreachableError,
    error_for_status,
)

__all__ = [
    "ConflictError",
    "ForbiddenError",
    "JsonObject",
    "K8sClient",
    "K8sError",
    "NotFoundError",
    "ServerError",
    "TokenSource",
    "TooManyRequestsError",
    "UnauthorizedError",
    "UnexpectedStatusError",
    "UnreachableError",
    "ssl_context_from_ca_data",
]

JsonObject = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

# Brief retries of API throttling (429 with Retry-After) on reads and patches.
THROTTLE_ATTEMPTS = 3
THROTTLE_MAX_WAIT = 2.0

# A reused keep-alive connection may have been closed by the server; retrying once on a fresh
# connection is safe because the request never reached the server.
_STALE_CONNECTION_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class TokenSource(Protocol):
    def __call__(self) -> str: ...

    def invalidate(self) -> None: ...


def ssl_context_from_ca_data(ca_data: str) -> ssl.SSLContext:
    """TLS context trusting only the cluster CA (`certificateAuthority.data`, base64 PEM).

    Raises ValueError, never a raw ssl.SSLError, when the value is not base64 of a PEM certificate.
    """
    try:
        pem = base64.b64decode(ca_data, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{CLUSTER_CA_DATA_ENV} is not base64-encoded PEM") from exc
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=pem)
    except ssl.SSLError as exc:
        raise ValueError(f"{CLUSTER_CA_DATA_ENV} is base64, but not of a PEM certificate ({exc})") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class K8sClient:
    """Kubernetes API client with typed errors (see `lambdas.common.errors`)."""

    def __init__(
        self,
        endpoint: str,
        ssl_context: ssl.SSLContext,
        token: TokenSource,
        *,
        timeout: float = 10.0,
        max_idle_connections: int = 64,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"cluster endpoint must be an https URL, got {endpoint!r}")
        self.host = parts.hostname
        self.port = parts.port or 443
        self._ssl_context = ssl_context
        self._token = token
        self._timeout = timeout
        self._sleep = sleep
        self._idle: queue.LifoQueue[http.client.HTTPSConnection] = queue.LifoQueue(
            maxsize=max_idle_connections
        )

    # -- transport -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: JsonObject | None = None,
        content_type: str = "application/json",
    ) -> JsonObject:
        """Send one request; return the decoded JSON body or raise a `K8sError` subclass.

        A 401 is retried once with a new token (the cached one may have expired). A 429 on
        GET/PATCH (API priority and fairness) is retried briefly; a 429 on POST is returned to
        the caller, because for an eviction it means a PodDisruptionBudget, not load.
        """
        url = path + ("?" + urlencode(query) if query else "")
        payload = None if body is None else json.dumps(body).encode("utf-8")
        for attempt in range(1, THROTTLE_ATTEMPTS + 1):
            try:
                try:
                    return self._send(method, url, payload, content_type)
                except UnauthorizedError:
                    self._token.invalidate()
                    return self._send(method, url, payload, content_type)
            except TooManyRequestsError as exc:
                if method == "POST" or attempt == THROTTLE_ATTEMPTS:
                    raise
                self._sleep(min(THROTTLE_MAX_WAIT, exc.retry_after or 0.2 * attempt))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _send(self, method: str, url: str, payload: bytes | None, content_type: str) -> JsonObject:
        headers = {
            "Authorization": f"Bearer {self._token()}",
            "Accept": "application/json",
        }
        if payload is not None:
            headers["Content-Type"] = content_type
        conn, reused = self._acquire()
        try:
            try:
                status, data, retry_after = self._roundtrip(conn, method, url, payload, headers)
            except _STALE_CONNECTION_ERRORS:
                if not reused:
                    raise
                conn.close()
                conn, reused = self._new_connection(), False
                status, data, retry_after = self._roundtrip(conn, method, url, payload, headers)
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise UnreachableError(f"{method} {url}: {self.host}:{self.port} unreachable: {exc!r}") from exc
        self._release(conn)
        decoded = _decode(data)
        if 200 <= status < 300:
            return decoded
        message = str(decoded.get("message") or data[:200].decode("utf-8", "replace"))
        reason = str(decoded.get("reason", ""))
        raise error_for_status(status, f"{method} {url}: {status} {message}", reason, retry_after)

    def _roundtrip(
        self,
        conn: http.client.HTTPSConnection,
        method: str,
        url: str,
        payload: bytes | None,
        headers: dict[str, str],
    ) -> tuple[int, bytes, float]:
        conn.request(method, url, body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read()
        retry_after = _parse_retry_after(response.getheader("Retry-After"))
        if response.will_close:
            conn.close()
        return response.status, data, retry_after

    def _acquire(self) -> tuple[http.client.HTTPSConnection, bool]:
        try:
            return self._idle.get_nowait(), True
        except queue.Empty:
            return self._new_connection(), False

    def _new_connection(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self.host, self.port, timeout=self._timeout, context=self._ssl_context
        )

    def _release(self, conn: http.client.HTTPSConnection) -> None:
        if conn.sock is None:  # closed by the server (Connection: close)
            return
        try:
            self._idle.put_nowait(conn)
        except queue.Full:
            conn.close()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    # -- API calls used by the handlers --------------------------------------------------

    def get_node(self, name: str) -> JsonObject:
        return self.request("GET", f"/api/v1/nodes/{quote(name, safe='')}")

    def list_nodes(self, *, label_selector: str = "") -> list[JsonObject]:
        query = {"labelSelector": label_selector} if label_selector else None
        return _items(self.request("GET", "/api/v1/nodes", query=query))

    def patch_node(
        self, name: str, patch: JsonObject, *, content_type: str = STRATEGIC_MERGE_PATCH
    ) -> JsonObject:
        return self.request(
            "PATCH", f"/api/v1/nodes/{quote(name, safe='')}", body=patch, content_type=content_type
        )

    def list_pods_on_node(self, node_name: str) -> list[JsonObject]:
        query = {"fieldSelector": f"spec.nodeName={node_name}"}
        return _items(self.request("GET", "/api/v1/pods", query=query))

    def evict_pod(self, namespace: str, name: str) -> JsonObject:
        body: JsonObject = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        path = f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(name, safe='')}"
        return self.request("POST", path + "/eviction", body=body)

    def create_event(self, namespace: str, event: JsonObject) -> JsonObject:
        path = f"/api/v1/namespaces/{quote(namespace, safe='')}/events"
        return self.request("POST", path, body=event)

    def get_deployment(self, namespace: str, name: str) -> JsonObject:
        return self.request("GET", _deployment_path(namespace, name))

    def patch_deployment(self, namespace: str, name: str, patch: JsonObject) -> JsonObject:
        return self.request("PATCH", _deployment_path(namespace, name), body=patch, content_type=MERGE_PATCH)

    def get_scaled_object(self, namespace: str, name: str) -> JsonObject:
        return self.request("GET", _scaled_object_path(namespace, name))

    def patch_scaled_object(self, namespace: str, name: str, patch: JsonObject) -> JsonObject:
        # Custom resources accept JSON merge patches, not strategic ones.
        return self.request(
            "PATCH", _scaled_object_path(namespace, name), body=patch, content_type=MERGE_PATCH
        )


def _deployment_path(namespace: str, name: str) -> str:
    ns = quote(namespace, safe="")
    return f"/apis/apps/v1/namespaces/{ns}/deployments/{quote(name, safe='')}"


def _scaled_object_path(namespace: str, name: str) -> str:
    ns = quote(namespace, safe="")
    return f"/apis/keda.sh/v1alpha1/namespaces/{ns}/scaledobjects/{quote(name, safe='')}"


def _items(listing: JsonObject) -> list[JsonObject]:
    items = listing.get("items") or []
    return [item for item in items if isinstance(item, dict)]


def _decode(data: bytes) -> JsonObject:
    if not data:
        return {}
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _parse_retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0
