"""The morning check: does every model in scope have a ready replica again?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambdas.common.k8s import K8sClient, K8sError, NotFoundError
from lambdas.offhours_scaler.deployments import is_scaled_down


@dataclass(frozen=True)
class Readiness:
    name: str
    ready: int
    desired: int
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.ready > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ready": self.ready,
            "desired": self.desired,
            "ok": self.ok,
            "reason": self.reason,
        }


def check(k8s: K8sClient, namespace: str, name: str) -> Readiness:
    """A Deployment that cannot be read counts as not ready: nobody has seen it serve."""
    try:
        dep = k8s.get_deployment(namespace, name)
    except NotFoundError:
        return Readiness(name, 0, 0, f"not found in {namespace}")
    except K8sError as exc:
        return Readiness(name, 0, 0, f"could not read it: {exc}")
    ready = int((dep.get("status") or {}).get("readyReplicas") or 0)
    desired = int(dep["spec"].get("replicas", 1))
    if ready:
        reason = ""
    elif is_scaled_down(dep):
        reason = "still scaled down: the restore record is there (did scale_up fail?)"
    elif desired == 0:
        reason = "0 replicas wanted"
    else:
        reason = f"0 of {desired} replicas ready (pending pods, image pull or model load?)"
    return Readiness(name, ready, desired, reason)
