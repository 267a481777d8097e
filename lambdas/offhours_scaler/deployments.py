"""Scale model Deployments down to the floor and back, recording replicas in an annotation.

Record and replicas change in one patch guarded by resourceVersion, so there is never a
Deployment at the floor without a record, and a concurrent writer causes a 409 and a re-read.
KEDA would undo the new replicas at its next poll; `scaledobjects` pauses it.
In the morning the replicas are restored first and the record removed last (`forget`), once
everything that depends on it has succeeded (see run.py): a failed step leaves the record, and
the retry redoes the step from it.
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


def scale_up(k8s: K8sClient, namespace: str, name: str, *, keda_resumed: bool) -> Change:
    """Restore the recorded replicas; the record stays (`Change.record`) until `forget`.

    :param keda_resumed: False when the model's ScaledObject could not be resumed: KEDA, still
        paused, would set the replicas back to the floor, so nothing is restored and the record
        is kept for the retry.
    """
    return _patch(k8s, namespace, name, lambda dep: _up(dep, name, keda_resumed))


def forget(k8s: K8sClient, namespace: str, name: str) -> Change:
    """Remove the restore record, the scale-up's last step for this Deployment."""
    return _patch(k8s, namespace, name, lambda dep: _forget(dep, name))


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
        if replicas <= floor:
            return _skip(name, replicas, f"already scaled down (recorded {recorded})"), None
        # Recorded but above the floor again: KEDA was not paused yet (an earlier run failed)
        # and restored its minimum. Back to the floor; the record stays as it is.
        change = Change("deployment", name, "scaled", str(replicas), str(floor), f"recorded {recorded}")
        return change, {"spec": {"replicas": floor}}
    if replicas <= floor:
        return _skip(name, replicas, f"at or below the floor ({floor})"), None
    patch = {
        "metadata": {"annotations": {RESTORE_ANNOTATION: str(replicas)}},
        "spec": {"replicas": floor},
    }
    return Change("deployment", name, "scaled", str(replicas), str(floor)), patch


def _up(dep: JsonObject, name: str, keda_resumed: bool) -> Plan:
    annotations = dep["metadata"].get("annotations") or {}
    replicas = int(dep["spec"].get("replicas", 1))
    recorded_raw = annotations.get(RESTORE_ANNOTATION)
    if recorded_raw is None:
        return _skip(name, replicas, "nothing recorded"), None
    try:
        recorded = int(recorded_raw)
    except ValueError:
        return Change("deployment", name, "failed", str(replicas), "", "bad record", record=name), None
    if not keda_resumed:
        reason = "not restored: its ScaledObject is still paused; record kept for the retry"
        return Change("deployment", name, "failed", str(replicas), str(replicas), reason, record=name), None
    # Never lower what is running now (someone may have scaled it up by hand at night).
    target = max(recorded, replicas)
    if target == replicas:
        reason = "already restored"
        return Change("deployment", name, "skipped", str(replicas), str(target), reason, record=name), None
    reason = "" if target == recorded else "kept the higher current replicas"
    change = Change("deployment", name, "restored", str(replicas), str(target), reason, record=name)
    return change, {"spec": {"replicas": target}}


def _forget(dep: JsonObject, name: str) -> Plan:
    annotations = dep["metadata"].get("annotations") or {}
    if RESTORE_ANNOTATION not in annotations:
        return Change("deployment", name, "forgotten", reason="record already removed"), None
    patch = {"metadata": {"annotations": {RESTORE_ANNOTATION: None}}}
    return Change("deployment", name, "forgotten", reason="record removed"), patch


def _skip(name: str, replicas: int, reason: str) -> Change:
    return Change("deployment", name, "skipped", str(replicas), str(replicas), reason)
