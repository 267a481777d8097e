"""Typed Kubernetes API errors, one class per status the handlers treat differently."""

from __future__ import annotations


class K8sError(Exception):
    """A Kubernetes API call failed. `status` is the HTTP status (0 when unreachable)."""

    status: int = 0

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.reason = reason


class UnauthorizedError(K8sError):
    """401: the token was rejected (expired, wrong cluster, role not mapped)."""

    status = 401


class ForbiddenError(K8sError):
    """403: authenticated, but RBAC does not allow the call."""

    status = 403


class NotFoundError(K8sError):
    status = 404


class ConflictError(K8sError):
    """409: the object changed since it was read (resourceVersion precondition)."""

    status = 409


class TooManyRequestsError(K8sError):
    """429: API throttling, or an eviction blocked by a PodDisruptionBudget."""

    status = 429

    def __init__(
        self, message: str, *, status: int | None = None, reason: str = "", retry_after: float = 0
    ) -> None:
        super().__init__(message, status=status, reason=reason)
        self.retry_after = retry_after


class ServerError(K8sError):
    """5xx from the API server (or from the admission chain behind it)."""

    status = 500


class UnreachableError(K8sError):
    """No HTTP response: DNS, TCP, TLS or timeout failure."""

    status = 0


class UnexpectedStatusError(K8sError):
    """Any other non-2xx status."""


def error_for_status(status: int, message: str, reason: str = "", retry_after: float = 0) -> K8sError:
    if status == 429:
        return TooManyRequestsError(message, status=status, reason=reason, retry_after=retry_after)
    by_status: dict[int, type[K8sError]] = {
        401: UnauthorizedError,
        403: ForbiddenError,
        404: NotFoundError,
        409: ConflictError,
    }
    cls = by_status.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else UnexpectedStatusError
    return cls(message, status=status, reason=reason)
