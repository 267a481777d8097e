"""Scale model Deployments down to the floor and back, recording replicas in an annotation.

Record and replicas change in one patch guarded by resourceVersion, so there is never a
Deployment at the floor without a record, and a concurrent writer causes a 409 and a re-read.
KEDA would undo the new replicas at its next poll; `scaledobjects` pauses it.
"""

from __future__ import annotations

from collections.abc import Callable

from lambdas.common.k8s import JsonObject, K8sClient
from lambdas.offhours_scaler.guarded_patch import Plan, read_plan_patch
from lambdas.offhours_scaler.records import (
    KEEP_UP_ANNOTATION,
    RESTORE_ANNOTATION,
    Change,
    is_kept_up,
)


def scale_down(k8s: K8sClient, namespace: str, name: str, floor: int) -> Change:
    return _patch(k8s, namespace, name, lambda dep: _down(dep, name, floor))


def scale_up(k8s: K8sClient, namespace: str, name: str) -> Change:
    return _patch(k8s, namespace, name, lambda dep: _up(dep, name))


def _patch(k8s: K8sClient, namespace: str, name: str, plan: Callable[[JsonObject], Plan]) -> Change:
    return read_plan_patch(
        kind="deployment",
        name=name,
        namespace=namespace,
        read=lambda: k8s.get_deployment(namespace, name),
        write=lambda patch: k8s.patch_deployment(namespace, name, patch),
        plan=plan,
    )


def is_scaled_down(dep: JsonObject) -> bool:
    """The Deployment carries a restore record: it is (or is being) held at the floor."""
    return RESTORE_ANNOTATION in (dep["metadata"].get("annotations") or {})


def _down(dep: JsonObject, name: str, floor: int) -> Plan:
    annotations = dep["metadata"].get("annotations") or {}
    replicas = int(dep["spec"].get("replicas", 1))
    if is_kept_up(annotations.get(KEEP_UP_ANNOTATION)):
        return _skip(name, replicas, f"override annotation {KEEP_UP_ANNOTATION}"), None
    if RESTORE_ANNOTATION in annotations:
        recorded = annotations[RESTORE_ANNOTATION]
        return _skip(name, replicas, f"already scaled down (recorded {recorded})"), None
    if replicas <= floor:
        return _skip(name, replicas, f"at or below the floor ({floor})"), None
    patch = {
        "metadata": {"annotations": {RESTORE_ANNOTATION: str(replicas)}},
        "spec": {"replicas": floor},
    }
    return Change("deployment", name, "scaled", str(replicas), str(floor)), patch


def _up(dep: JsonObject, name: str) -> Plan:
    annotations = dep["metadata"].get("annotations") or {}
    replicas = int(dep["spec"].get("replicas", 1))
    recorded_raw = annotations.get(RESTORE_ANNOTATION)
    if recorded_raw is None:
        return _skip(name, replicas, "nothing recorded"), None
    try:
        recorded = int(recorded_raw)
    except ValueError:
        return Change("deployment", name, "failed", str(replicas), "", "bad record"), None
    # Never lower what is running now (someone may have scaled it up by hand at night).
    target = max(recorded, replicas)
    patch = {
        "metadata": {"annotations": {RESTORE_ANNOTATION: None}},
        "spec": {"replicas": target},
    }
    reason = "" if target == recorded else "kept the higher current replicas"
    return Change("deployment", name, "restored", str(replicas), str(target), reason), patch


def _skip(name: str, replicas: int, reason: str) -> Change:
    return Change("deployment", name, "skipped", str(replicas), str(replicas), reason)
