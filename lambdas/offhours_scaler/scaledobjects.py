"""Hold KEDA off a model while it is scaled down, and hand it back in the morning.

KEDA's operator keeps a Deployment at its ScaledObject's minReplicaCount, and scales it up from
zero when a trigger is active, so replicas set behind its back are undone within one polling
interval. Its documented hold is the annotation ``autoscaling.keda.sh/paused-replicas``: KEDA
scales the target to that count and stops autoscaling until the annotation is removed. A second
annotation marks the pause as the scaler's, so the morning never lifts a pause somebody else set.
"""

from __future__ import annotations

from collections.abc import Callable

from lambdas.common.k8s import JsonObject, K8sClient, K8sError, NotFoundError
from lambdas.offhours_scaler.deployments import is_scaled_down
from lambdas.offhours_scaler.guarded_patch import Plan, read_plan_patch
from lambdas.offhours_scaler.records import KEDA_PAUSED_REPLICAS_ANNOTATION as PAUSED
from lambdas.offhours_scaler.records import PAUSED_BY_SCALER_ANNOTATION as OURS
from lambdas.offhours_scaler.records import Change

AUTOSCALING = "autoscaling"


def pause(k8s: K8sClient, namespace: str, name: str, floor: int) -> Change:
    """Pause the model's ScaledObject at `floor` if its Deployment holds a restore record.

    Deciding from the Deployment's record rather than this run's outcome makes a retry finish a
    pause that an earlier run could not make.
    """
    try:
        held = is_scaled_down(k8s.get_deployment(namespace, name))
    except NotFoundError:
        held = False
    except K8sError as exc:
        return Change("scaledobject", name, "failed", reason=f"reading its Deployment: {exc}")
    if not held:
        return Change("scaledobject", name, "skipped", reason="its Deployment was not scaled down")
    return _patch(k8s, namespace, name, lambda so: _pause(so, name, floor))


def resume(k8s: K8sClient, namespace: str, name: str) -> Change:
    """Remove the scaler's pause (only the scaler's), so KEDA autoscales the Deployment again."""
    return _patch(k8s, namespace, name, lambda so: _resume(so, name))


def _patch(k8s: K8sClient, namespace: str, name: str, plan: Callable[[JsonObject], Plan]) -> Change:
    return read_plan_patch(
        kind="scaledobject",
        name=name,
        namespace=namespace,
        read=lambda: k8s.get_scaled_object(namespace, name),
        write=lambda patch: k8s.patch_scaled_object(namespace, name, patch),
        plan=plan,
    )


def _pause(so: JsonObject, name: str, floor: int) -> Plan:
    annotations = so["metadata"].get("annotations") or {}
    paused = annotations.get(PAUSED)
    state = _state(paused)
    if paused is not None and OURS not in annotations:
        reason = f"paused by someone else ({PAUSED}={paused}); left as it is"
        return _skip(name, state, reason), None
    if paused == str(floor):
        return _skip(name, state, "already paused"), None
    patch = {"metadata": {"annotations": {PAUSED: str(floor), OURS: "true"}}}
    return Change("scaledobject", name, "paused", state, _state(str(floor))), patch


def _resume(so: JsonObject, name: str) -> Plan:
    annotations = so["metadata"].get("annotations") or {}
    paused = annotations.get(PAUSED)
    if OURS not in annotations:
        return _skip(name, _state(paused), "not paused by the off-hours scaler"), None
    patch = {"metadata": {"annotations": {PAUSED: None, OURS: None}}}
    return Change("scaledobject", name, "resumed", _state(paused), AUTOSCALING), patch


def _state(paused: str | None) -> str:
    return AUTOSCALING if paused is None else f"paused at {paused}"


def _skip(name: str, state: str, reason: str) -> Change:
    return Change("scaledobject", name, "skipped", state, state, reason)
