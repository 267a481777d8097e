"""The fake API server: real status codes, Status bodies, selectors, patches and evictions.

Semantics followed (from the Kubernetes API reference):
- every request needs `Authorization: Bearer k8s-aws-v1.<...>` (401 otherwise);
- list endpoints honour `fieldSelector` (spec.nodeName, metadata.name, metadata.namespace,
  status.phase; anything else is a 400) and `labelSelector` (`k=v`, `k!=v`, `k`);
- PATCH accepts merge-patch and strategic-merge-patch (for the fields used here, node spec and
  deployment replicas/annotations, both replace lists); a `metadata.resourceVersion` in the patch
  is a precondition (409 when stale); every write bumps resourceVersion;
- POST .../pods/<name>/eviction (policy/v1 Eviction body) deletes the pod with 201, returns 404
  for a missing pod and 429 while a PodDisruptionBudget blocks it.
Faults are injectable: 409s per path, a status per path, PDB 429 counts, 401/403 for all calls,
a latency added to every call, and `fault_hook`, asked about every call, which can make it fail
before it is applied (500) or apply it and lose the answer: the client gets a 504 with reason
`Timeout` (the API's StatusReasonTimeout, k8s.io/apimachinery pkg/apis/meta/v1/types.go) and never
learns that the write happened.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .certs import TlsMaterial, make_tls_material

Json = dict[str, Any]
Key = tuple[str, str]

MERGE_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")
KEDA_PAUSED = "autoscaling.keda.sh/paused-replicas"
"""KEDA's pause annotation (keda.sh docs: "Pausing autoscaling")."""
SUPPORTED_POD_FIELDS = ("spec.nodeName", "metadata.name", "metadata.namespace", "status.phase")


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def status_body(code: int, reason: str, message: str) -> Json:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _get_path(obj: Json, dotted: str) -> str:
    value: Any = obj
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def _match_fields(obj: Json, selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        negate = "!=" in term
        field, _, want = term.partition("!=" if negate else "=")
        want = want.lstrip("=")
        if field not in SUPPORTED_POD_FIELDS:
            raise ApiError(400, "BadRequest", f'field label not supported: "{field}"')
        if (_get_path(obj, field) == want) == negate:
            return False
    return True


def _match_labels(obj: Json, selector: str) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key) != value.lstrip("="):
                return False
        elif term not in labels:
            return False
    return True


class FakeKubernetes:
    """Start with `with FakeKubernetes() as api:`; `api.endpoint` and `api.ca_data` configure
    the client. State is plain dicts, edited directly by tests."""

    def __init__(self, *, latency: float = 0.0, tls: TlsMaterial | None = None) -> None:
        self.tls = tls or make_tls_material()
        self.latency = latency
        self.nodes: dict[str, Json] = {}
        self.pods: dict[Key, Json] = {}
        self.deployments: dict[Key, Json] = {}
        self.scaled_objects: dict[Key, Json] = {}
        self.events: list[Json] = []  # core/v1 Events created
        self.pdb_blocks: dict[Key, int] = {}  # pod -> remaining 429s before eviction is allowed
        self.conflicts: dict[str, int] = {}  # path -> remaining 409s on PATCH
        self.failures: dict[tuple[str, str], int] = {}  # (method, path) -> status to return
        self.queued_failures: dict[tuple[str, str], list[int]] = {}  # statuses, one per call
        self.reject_tokens = 0  # remaining requests answered 401
        self.forbidden = False  # every request answered 403
        self.token_check: Callable[[str], bool] = lambda token: True
        self.calls: list[tuple[str, str, str]] = []  # (method, path, query)
        # (method, path) -> None, "fail" (500, nothing applied) or "lose" (applied, then 504).
        self.fault_hook: Callable[[str, str], str | None] | None = None
        self.patches: list[tuple[str, Json]] = []  # (path, patch body) in arrival order
        self.timeline: list[tuple[float, str, str]] = []  # (monotonic time, method, path)
        self.connections = 0
        self._sockets: set[Any] = set()
        self.max_in_flight = 0
        self._in_flight = 0
        self._resource_version = 1000
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- object helpers -------------------------------------------------------------------

    def _bump(self, obj: Json) -> None:
        self._resource_version += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self._resource_version)

    def add_node(self, node: Json) -> None:
        with self.lock:
            self._bump(node)
            self.nodes[node["metadata"]["name"]] = node

    def add_pod(self, pod: Json, *, pdb_429s: int = 0) -> None:
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        with self.lock:
            self._bump(pod)
            self.pods[key] = pod
            if pdb_429s:
                self.pdb_blocks[key] = pdb_429s

    def add_deployment(self, deployment: Json) -> None:
        meta = deployment["metadata"]
        with self.lock:
            self._bump(deployment)
            self.deployments[(meta["namespace"], meta["name"])] = deployment

    def add_scaled_object(self, scaled_object: Json) -> None:
        meta = scaled_object["metadata"]
        with self.lock:
            self._bump(scaled_object)
            self.scaled_objects[(meta["namespace"], meta["name"])] = scaled_object

    def keda_poll(self, *, active: bool = False) -> None:
        """One pass of KEDA's operator over every ScaledObject: what undoes replicas set behind
        its back. Paused: scale the target to paused-replicas. Otherwise, from zero with an
        active trigger: up to max(min, 1); inactive below minReplicaCount: up to it
        (kedacore/keda pkg/scaling/executor/scale_scaledobjects.go)."""
        with self.lock:
            for (namespace, _), scaled_object in self.scaled_objects.items():
                target = (namespace, scaled_object["spec"]["scaleTargetRef"]["name"])
                dep = self.deployments.get(target)
                if dep is None:
                    continue
                replicas = dep["spec"].get("replicas", 1)
                minimum = scaled_object["spec"].get("minReplicaCount", 0)
                paused = (scaled_object["metadata"].get("annotations") or {}).get(KEDA_PAUSED)
                if paused is not None:
                    wanted = int(paused)
                elif replicas == 0 and active:
                    wanted = max(minimum, 1)
                elif not active and replicas < minimum:
                    wanted = minimum
                else:
                    continue
                if wanted != replicas:
                    dep["spec"]["replicas"] = wanted
                    dep["status"] = {"replicas": wanted, "readyReplicas": wanted}
                    self._bump(dep)

    def calls_matching(self, method: str, pattern: str) -> list[tuple[str, str, str]]:
        regex = re.compile(pattern)
        with self.lock:
            return [c for c in self.calls if c[0] == method and regex.search(c[1])]

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"https://localhost:{self._server.server_address[1]}"

    @property
    def ca_data(self) -> str:
        return self.tls.ca_data

    def __enter__(self) -> FakeKubernetes:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        context = self.tls.server_context()
        fake = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

            def finish_request(self, request: Any, client_address: Any) -> None:
                # TLS handshake in the worker thread, so slow handshakes do not serialise.
                # NODELAY: headers and body go out in two writes; without it Nagle plus
                # delayed ACKs add 40 ms to every call.
                request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    tls_sock = context.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return
                with fake.lock:
                    fake.connections += 1
                    fake._sockets.add(tls_sock)
                self.RequestHandlerClass(tls_sock, client_address, self)  # type: ignore[arg-type]

        self._server = Server(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def drop_connections(self) -> None:
        """Close every open connection server-side, as an API server restart or an idle
        timeout does; clients holding keep-alive connections find them dead on next use."""
        with self.lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by its handler thread
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- request handling -----------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, Json]:
        parts = urlsplit(raw_path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        with self.lock:
            self.calls.append((method, path, parts.query))
            self.timeline.append((time.monotonic(), method, path))
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if self.latency:
                time.sleep(self.latency)
            with self.lock:
                self._authorize(headers.get("Authorization", ""))
                queued = self.queued_failures.get((method, path))
                injected = queued.pop(0) if queued else self.failures.get((method, path))
                if injected:
                    raise ApiError(injected, "InternalError", f"injected {injected}")
                fault = self.fault_hook(method, path) if self.fault_hook else None
                if fault == "fail":
                    raise ApiError(500, "InternalError", "injected failure; nothing applied")
                result = self._route(method, path, query, headers, body)
                if fault == "lose":
                    raise ApiError(504, "Timeout", "injected: applied, but the response was lost")
                return result
        except ApiError as err:
            return err.code, status_body(err.code, err.reason, err.message)
        finally:
            with self.lock:
                self._in_flight -= 1

    def _authorize(self, header: str) -> None:
        token = header.removeprefix("Bearer ")
        if not header.startswith("Bearer k8s-aws-v1.") or not self.token_check(token):
            raise ApiError(401, "Unauthorized", "Unauthorized")
        if self.reject_tokens > 0:
            self.reject_tokens -= 1
            raise ApiError(401, "Unauthorized", "Unauthorized")
        if self.forbidden:
            raise ApiError(403, "Forbidden", "forbidden: User cannot do this")

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, Json]:
        field_sel = query.get("fieldSelector", [""])[0]
        label_sel = query.get("labelSelector", [""])[0]
        if m := re.fullmatch(r"/api/v1/nodes/?", path):
            if method == "GET":
                return 200, self._list("NodeList", self.nodes.values(), "", label_sel)
        elif m := re.fullmatch(r"/api/v1/nodes/([^/]+)", path):
            return self._object(method, path, self.nodes, m.group(1), "nodes", headers, body)
        elif re.fullmatch(r"/api/v1/pods", path) and method == "GET":
            return 200, self._list("PodList", self.pods.values(), field_sel, label_sel)
        elif m := re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods", path):
            pods = [p for (ns, _), p in self.pods.items() if ns == m.group(1)]
            return 200, self._list("PodList", pods, field_sel, label_sel)
        elif m := re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/eviction", path):
            if method == "POST":
                return self._evict((m.group(1), m.group(2)), body)
        elif m := re.fullmatch(r"/api/v1/namespaces/([^/]+)/events", path):
            if method == "POST":
                return self._create_event(m.group(1), body)
        elif m := re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/deployments", path):
            deps = [d for (ns, _), d in self.deployments.items() if ns == m.group(1)]
            return 200, self._list("DeploymentList", deps, field_sel, label_sel)
        elif m := re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)", path):
            key = (m.group(1), m.group(2))
            return self._object(method, path, self.deployments, key, "deployments", headers, body)
        elif m := re.fullmatch(r"/apis/keda.sh/v1alpha1/namespaces/([^/]+)/scaledobjects/([^/]+)", path):
            key = (m.group(1), m.group(2))
            return self._object(method, path, self.scaled_objects, key, "scaledobjects", headers, body)
        elif m := re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)/scale", path):
            return self._scale(method, (m.group(1), m.group(2)), headers, body)
        raise ApiError(404, "NotFound", f"the server could not find the requested resource {path}")

    def _list(self, kind: str, objs: Any, field_sel: str, label_sel: str) -> Json:
        items = [
            copy.deepcopy(o) for o in objs if _match_fields(o, field_sel) and _match_labels(o, label_sel)
        ]
        return {
            "kind": kind,
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(self._resource_version)},
            "items": items,
        }

    def _object(
        self,
        method: str,
        path: str,
        store: dict[Any, Json],
        key: Any,
        resource: str,
        headers: Any,
        body: bytes,
    ) -> tuple[int, Json]:
        obj = store.get(key)
        name = key[1] if isinstance(key, tuple) else key
        if obj is None:
            raise ApiError(404, "NotFound", f'{resource} "{name}" not found')
        if method == "GET":
            return 200, copy.deepcopy(obj)
        if method == "PATCH":
            patch = self._patch_body(headers, body)
            if resource == "scaledobjects" and "strategic" in (headers.get("Content-Type") or ""):
                # Like the real API server: custom resources take no strategic merge patches.
                raise ApiError(415, "UnsupportedMediaType", "strategic merge patch on a custom resource")
            self.patches.append((path, patch))
            self._precondition(path, obj, patch)
            patched = merge_patch(obj, patch)
            patched["metadata"].pop("resourceVersion", None)
            if resource == "deployments":
                replicas = patched["spec"].get("replicas", 1)
                patched["status"] = {"replicas": replicas, "readyReplicas": replicas}
            self._bump(patched)
            store[key] = patched
            return 200, copy.deepcopy(patched)
        raise ApiError(405, "MethodNotAllowed", f"{method} not allowed")

    def _patch_body(self, headers: Any, body: bytes) -> Json:
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type not in MERGE_TYPES:
            raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {content_type}")
        try:
            patch = json.loads(body)
        except ValueError:
            raise ApiError(400, "BadRequest", "invalid JSON patch body") from None
        if not isinstance(patch, dict):
            raise ApiError(400, "BadRequest", "patch must be an object")
        return patch

    def _precondition(self, path: str, obj: Json, patch: Json) -> None:
        if self.conflicts.get(path, 0) > 0:
            self.conflicts[path] -= 1
            # Someone else wrote the object in between: its resourceVersion moves on.
            self._bump(obj)
            raise ApiError(409, "Conflict", "the object has been modified; please apply again")
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != obj["metadata"].get("resourceVersion"):
            raise ApiError(409, "Conflict", "the object has been modified; please apply again")

    def _scale(self, method: str, key: Key, headers: Any, body: bytes) -> tuple[int, Json]:
        dep = self.deployments.get(key)
        if dep is None:
            raise ApiError(404, "NotFound", f'deployments.apps "{key[1]}" not found')
        if method == "PATCH":
            patch = self._patch_body(headers, body)
            replicas = (patch.get("spec") or {}).get("replicas")
            if isinstance(replicas, int):
                dep["spec"]["replicas"] = replicas
                dep["status"] = {"replicas": replicas, "readyReplicas": replicas}
                self._bump(dep)
        elif method != "GET":
            raise ApiError(405, "MethodNotAllowed", f"{method} not allowed")
        return 200, {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {"name": key[1], "namespace": key[0]},
            "spec": {"replicas": dep["spec"]["replicas"]},
            "status": {"replicas": dep["status"]["replicas"]},
        }

    def _create_event(self, namespace: str, body: bytes) -> tuple[int, Json]:
        event = json.loads(body)
        if event.get("kind") != "Event" or not event.get("involvedObject", {}).get("name"):
            raise ApiError(422, "Invalid", "Event.involvedObject.name: Required value")
        meta = event.setdefault("metadata", {})
        if meta.get("namespace", namespace) != namespace:
            raise ApiError(400, "BadRequest", "the namespace of the object does not match")
        meta["name"] = meta.get("name") or f"{meta.get('generateName', 'event.')}{len(self.events)}"
        self._bump(event)
        self.events.append(event)
        return 201, event

    def _evict(self, key: Key, body: bytes) -> tuple[int, Json]:
        try:
            eviction = json.loads(body)
        except ValueError:
            raise ApiError(400, "BadRequest", "invalid Eviction body") from None
        if eviction.get("kind") != "Eviction" or eviction.get("apiVersion") != "policy/v1":
            raise ApiError(400, "BadRequest", "body must be a policy/v1 Eviction")
        if eviction.get("metadata", {}).get("name") != key[1]:
            raise ApiError(400, "BadRequest", "name in Eviction does not match the URL")
        if key not in self.pods:
            raise ApiError(404, "NotFound", f'pods "{key[1]}" not found')
        if self.pdb_blocks.get(key, 0) > 0:
            self.pdb_blocks[key] -= 1
            raise ApiError(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.",
            )
        del self.pods[key]
        return 201, status_body(201, "", "")


def _make_handler(fake: FakeKubernetes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real API server

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            code, payload = fake.handle(self.command, self.path, self.headers, body)
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve  # noqa: N815 - http.server API

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
