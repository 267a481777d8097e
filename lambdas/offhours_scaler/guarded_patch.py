"""Read an object, decide, and patch it with the resourceVersion that was read.

A concurrent writer (KEDA, a person, a rollout) moves the resourceVersion on, so the patch fails
with 409 instead of overwriting what it did; the object is then read and decided again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from lambdas.common.k8s import ConflictError, JsonObject, K8sError, NotFoundError
from lambdas.offhours_scaler.records import Change

MAX_ATTEMPTS = 5

Plan = tuple[Change, JsonObject | None]
"""The change a run reports and the patch that makes it (None: nothing to do)."""


def guarded(patch: JsonObject, read: JsonObject) -> JsonObject:
    """`patch` with the read object's resourceVersion as a precondition."""
    metadata = dict(patch.get("metadata") or {})
    metadata["resourceVersion"] = read["metadata"].get("resourceVersion")
    return {**patch, "metadata": metadata}


def read_plan_patch(
    *,
    kind: str,
    name: str,
    namespace: str,
    read: Callable[[], JsonObject],
    write: Callable[[JsonObject], object],
    plan: Callable[[JsonObject], Plan],
) -> Change:
    last = ""
    change = Change(kind, name, "failed")
    for _ in range(MAX_ATTEMPTS):
        try:
            current = read()
        except NotFoundError:
            return Change(kind, name, "skipped", reason=f"not found in {namespace}")
        except K8sError as exc:
            return Change(kind, name, "failed", reason=str(exc))
        change, patch = plan(current)
        if patch is None:
            return change
        try:
            write(guarded(patch, current))
            return change
        except ConflictError as exc:
            last = str(exc)  # changed since we read it: read again
        except K8sError as exc:
            # Keep what the plan knew (the record it holds): the run decides on it.
            return replace(change, result="failed", reason=str(exc))
    return replace(change, result="failed", reason=f"{MAX_ATTEMPTS} conflicts: {last}")
