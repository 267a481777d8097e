"""One scale-down or scale-up run, in the order that keeps requests safe.

scale_down: Deployments first, then node groups, so pods terminate gracefully (PDBs, grace
periods) before EKS removes nodes, which ignores PodDisruptionBudgets. If a Deployment could
not be scaled down its nodes stay, and the run is reported as failed.
scale_up: node groups first, then Deployments, so new pods find capacity sooner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lambdas.common.k8s import K8sClient
from lambdas.common.retry import Backoff, Deadline
from lambdas.offhours_scaler import deployments, nodegroups
from lambdas.offhours_scaler.events import Action
from lambdas.offhours_scaler.records import Change
from lambdas.offhours_scaler.settings import ScalerSettings

# Node-group updates take minutes; EKS answers ResourceInUseException meanwhile.
DEFAULT_BACKOFF = Backoff(base=2.0, cap=20.0)


@dataclass
class RunSummary:
    action: str
    changes: list[Change] = field(default_factory=list)
    gpu_node_hours_saved: float = 0.0
    seconds_used: float = 0.0

    def count(self, result: str) -> int:
        return sum(1 for change in self.changes if change.result == result)

    @property
    def failed(self) -> int:
        return self.count("failed")

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "status": "incomplete" if self.failed else "ok",
            "changed": self.count("scaled") + self.count("restored"),
            "skipped": self.count("skipped"),
            "failed": self.failed,
            "gpu_node_hours_saved": round(self.gpu_node_hours_saved, 2),
            "seconds_used": round(self.seconds_used, 3),
            "changes": [change.as_dict() for change in self.changes],
        }


def run(
    action: Action,
    settings: ScalerSettings,
    *,
    k8s: K8sClient,
    eks: Any,
    deadline: Deadline,
    backoff: Backoff | None = None,
) -> RunSummary:
    policy = backoff or DEFAULT_BACKOFF
    summary = RunSummary(action)
    cluster, namespace = settings.cluster.name, settings.namespace
    if action == "scale_down":
        summary.changes += [
            deployments.scale_down(k8s, namespace, name, settings.floor_replicas)
            for name in settings.deployments
        ]
        if summary.failed:
            summary.changes += [
                Change("nodegroup", name, "skipped", reason="a Deployment was not scaled down")
                for name in settings.node_groups
            ]
        else:
            summary.changes += nodegroups.run_all(
                settings.node_groups,
                lambda name: nodegroups.scale_down(eks, cluster, name, settings.floor_nodes),
                deadline,
                policy,
            )
        freed = sum(change.nodes_freed for change in summary.changes)
        summary.gpu_node_hours_saved = freed * settings.off_hours_per_night
    else:
        summary.changes += nodegroups.run_all(
            settings.node_groups,
            lambda name: nodegroups.scale_up(eks, cluster, name),
            deadline,
            policy,
        )
        summary.changes += [deployments.scale_up(k8s, namespace, name) for name in settings.deployments]
    return summary
