"""Names and formats of the recorded state and of the manual override (see lambdas/README.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# On model Deployments (annotations).
RESTORE_ANNOTATION = "offhours.llm-inference.aws/restore-replicas"
KEEP_UP_ANNOTATION = "offhours.llm-inference.aws/keep-up"
# On KEDA ScaledObjects: KEDA's own pause, and our mark that the pause is the scaler's.
KEDA_PAUSED_REPLICAS_ANNOTATION = "autoscaling.keda.sh/paused-replicas"
PAUSED_BY_SCALER_ANNOTATION = "offhours.llm-inference.aws/paused-keda"
# On EKS managed node groups (tags; EKS tag values allow letters, digits and "+-=._:/@").
RESTORE_TAG = "offhours.llm-inference.aws/restore"
KEEP_UP_TAG = "offhours.llm-inference.aws/keep-up"

_SCALING = re.compile(r"^min=(\d+)/desired=(\d+)/max=(\d+)$")


def is_kept_up(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "yes", "1")


@dataclass(frozen=True)
class Scaling:
    min: int
    desired: int
    max: int

    @classmethod
    def from_eks(cls, config: dict[str, Any]) -> Scaling:
        return cls(int(config["minSize"]), int(config["desiredSize"]), int(config["maxSize"]))

    def to_eks(self) -> dict[str, int]:
        return {"minSize": self.min, "desiredSize": self.desired, "maxSize": self.max}

    def encode(self) -> str:
        return f"min={self.min}/desired={self.desired}/max={self.max}"

    @classmethod
    def decode(cls, value: str) -> Scaling:
        match = _SCALING.match(value.strip())
        if not match:
            raise ValueError(f"recorded scaling {value!r} is not min=N/desired=N/max=N")
        return cls(int(match[1]), int(match[2]), int(match[3]))

    def __str__(self) -> str:
        return self.encode()


@dataclass(frozen=True)
class Change:
    """One line of the run summary."""

    kind: str  # deployment | scaledobject | nodegroup | schedule
    name: str
    result: str  # scaled | restored | paused | resumed | scheduled | forgotten | skipped | failed
    before: str = ""
    after: str = ""
    reason: str = ""
    nodes_freed: int = 0  # desired nodes removed by a node-group scale-down
    # Set when the item still holds its restore record after this step: what removes it (the
    # Deployment's name, the node group's ARN). A scale-up removes records last, see run.py.
    record: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "name": self.name,
            "result": self.result,
            "from": self.before,
            "to": self.after,
            "reason": self.reason,
        }
