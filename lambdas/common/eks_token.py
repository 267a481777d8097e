"""EKS bearer tokens: the same value `aws eks get-token` prints.

A token is a presigned STS GetCallerIdentity URL, signed with the header
`x-k8s-aws-id: <cluster name>` so it cannot be replayed against another cluster,
then wrapped as "k8s-aws-v1." + urlsafe base64 without padding.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - a format prefix, not a secret
CLUSTER_ID_HEADER = "x-k8s-aws-id"
# aws-cli signs for 60 s; the EKS authenticator accepts a token for 15 minutes from signing.
PRESIGN_EXPIRES_SECONDS = 60
# Reuse a token well inside the authenticator's 15-minute window.
TOKEN_REUSE_SECONDS = 600.0


def _move_cluster_name_to_context(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    # GetCallerIdentity takes no parameters: carry the cluster name to the signer in the context.
    if CLUSTER_ID_HEADER in params:
        context[CLUSTER_ID_HEADER] = params.pop(CLUSTER_ID_HEADER)


def _add_cluster_header(request: Any, **_: Any) -> None:
    if CLUSTER_ID_HEADER in request.context:
        request.headers[CLUSTER_ID_HEADER] = request.context[CLUSTER_ID_HEADER]


def make_token(sts_client: Any, cluster_name: str) -> str:
    """Return a bearer token for `cluster_name` signed with `sts_client`'s credentials.

    `sts_client` should use the regional STS endpoint, as aws-cli does. This is the
    aws-cli implementation: the handlers are registered once per client (unique ids).
    """
    events = sts_client.meta.events
    events.register(
        "provide-client-params.sts.GetCallerIdentity",
        _move_cluster_name_to_context,
        unique_id="k8s-aws-id-params",
    )
    events.register("before-sign.sts.GetCallerIdentity", _add_cluster_header, unique_id="k8s-aws-id-header")
    url: str = sts_client.generate_presigned_url(
        "get_caller_identity",
        Params={CLUSTER_ID_HEADER: cluster_name},
        ExpiresIn=PRESIGN_EXPIRES_SECONDS,
        HttpMethod="GET",
    )
    encoded = base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii")
    return TOKEN_PREFIX + encoded.rstrip("=")


class TokenProvider:
    """Thread-safe token cache; `invalidate()` forces a new token after a 401."""

    def __init__(
        self,
        sts_client_factory: Callable[[], Any],
        cluster_name: str,
        *,
        reuse_seconds: float = TOKEN_REUSE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sts_client_factory = sts_client_factory
        self._cluster_name = cluster_name
        self._reuse_seconds = reuse_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._issued_at = 0.0

    def __call__(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is None or now - self._issued_at >= self._reuse_seconds:
                self._token = make_token(self._sts_client_factory(), self._cluster_name)
                self._issued_at = now
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None
