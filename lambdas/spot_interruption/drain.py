"""Choose the pods to evict and evict them in parallel through the policy/v1 Eviction API.

kubectl drain semantics: DaemonSet pods stay (their controller would recreate them on the same
node), mirror pods cannot be evicted through the API, finished pods hold nothing. Pods with
emptyDir volumes are evicted: the node is going away, so their scratch data is lost anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from lambdas.common.k8s import (
    ForbiddenError,
    JsonObject,
    K8sClient,
    K8sError,
    NotFoundError,
    TooManyRequestsError,
    UnauthorizedError,
    UnreachableError,
)
from lambdas.common.retry import Backoff, Deadline

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
FINISHED_PHASES = ("Succeeded", "Failed")
# Failures that are not about one pod: stop the drain and let the invocation fail (retry/DLQ).
FATAL_ERRORS = (UnauthorizedError, ForbiddenError, UnreachableError)


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class PodSelection:
    to_evict: list[PodRef] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # "ns/name" -> reason


def select_pods(pods: Iterable[JsonObject]) -> PodSelection:
    selection = PodSelection()
    for pod in pods:
        meta = pod.get("metadata", {})
        ref = PodRef(meta.get("namespace", "default"), meta.get("name", ""))
        owners = meta.get("ownerReferences") or []
        if any(o.get("kind") == "DaemonSet" and o.get("controller") for o in owners):
            selection.skipped[str(ref)] = "daemonset"
        elif MIRROR_ANNOTATION in (meta.get("annotations") or {}):
            selection.skipped[str(ref)] = "mirror"
        elif pod.get("status", {}).get("phase") in FINISHED_PHASES:
            selection.skipped[str(ref)] = "finished"
        else:
            selection.to_evict.append(ref)
    return selection


@dataclass
class DrainOutcome:
    evicted: list[str] = field(default_factory=list)
    already_gone: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # "ns/name" -> cause
    pending: dict[str, str] = field(default_factory=dict)  # "ns/name" -> why not evicted yet
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, bucket: str, pod: PodRef, detail: str = "") -> None:
        with self._lock:
            target = getattr(self, bucket)
            if isinstance(target, dict):
                target[str(pod)] = detail
            else:
                target.append(str(pod))


def evict_pods(
    k8s: K8sClient,
    pods: list[PodRef],
    deadline: Deadline,
    *,
    concurrency: int,
    safety_seconds: float,
    backoff: Backoff | None = None,
) -> DrainOutcome:
    """Evict every pod, retrying 429s until `safety_seconds` before the deadline."""
    outcome = DrainOutcome()
    stop = threading.Event()
    policy = backoff or Backoff()

    def evict(pod: PodRef) -> None:
        attempt = 0
        last = "deadline reached before the first attempt"
        while not stop.is_set():
            if deadline.remaining() <= safety_seconds:
                outcome.record("pending", pod, last)
                return
            try:
                k8s.evict_pod(pod.namespace, pod.name)
            except NotFoundError:
                outcome.record("already_gone", pod)
                return
            except TooManyRequestsError as exc:
                attempt += 1
                with outcome._lock:
                    outcome.retries += 1
                last = f"429 after {attempt} attempts: {exc}"
                delay = max(policy.delay(attempt), min(exc.retry_after, policy.cap))
                if not deadline.sleep_if_time(delay, margin=safety_seconds):
                    outcome.record("pending", pod, last)
                    return
                continue
            except FATAL_ERRORS:
                stop.set()
                raise
            except K8sError as exc:
                outcome.record("failed", pod, str(exc))
                return
            outcome.record("evicted", pod)
            return
        outcome.record("pending", pod, "drain stopped by a fatal API error")

    if pods:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(pods))) as pool:
            futures = [pool.submit(evict, pod) for pod in pods]
        # Re-raise the first fatal error (after every worker has returned).
        for future in futures:
            future.result()
    return outcome
