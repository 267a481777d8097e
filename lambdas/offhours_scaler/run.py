"""One run of an action, in the order that keeps requests safe.

scale_down: per model, the Deployment (record + floor), then its ScaledObject (pause KEDA, which
would otherwise restore minReplicaCount at its next poll); then node groups, so pods terminate
gracefully (PDBs, grace periods) before EKS removes nodes, which ignores PodDisruptionBudgets. If a
model could not be scaled down and held there, its nodes stay and the run is reported as failed.
scale_up: node groups first, so new pods find capacity sooner; then per model, KEDA is resumed and
the Deployment restored (not while KEDA is still paused: it would undo it); then, if any item held
a restore record (a restore done, or still incomplete), the readiness check is booked; last, the
records of the items restored are removed. A record is the retry's only memory of the night, so it
goes only after every step that depends on it succeeded: a failed restore or booking keeps the
records, and the retry restores and books again.
check_ready: read each Deployment's ready replicas; change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lambdas.common.k8s import K8sClient
from lambdas.common.retry import Backoff, Deadline
from lambdas.offhours_scaler import deployments, nodegroups, readiness, scaledobjects
from lambdas.offhours_scaler.events import Action
from lambdas.offhours_scaler.readiness import Readiness
from lambdas.offhours_scaler.records import Change
from lambdas.offhours_scaler.settings import ScalerSettings

# Node-group updates take minutes; EKS answers ResourceInUseException meanwhile.
DEFAULT_BACKOFF = Backoff(base=2.0, cap=20.0)
CAPACITY_CHANGES = ("scaled", "restored", "paused", "resumed")


@dataclass
class RunSummary:
    action: str
    changes: list[Change] = field(default_factory=list)
    readiness: list[Readiness] = field(default_factory=list)
    gpu_node_hours_saved: float = 0.0
    seconds_used: float = 0.0

    def count(self, *results: str) -> int:
        return sum(1 for change in self.changes if change.result in results)

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def not_ready(self) -> list[str]:
        return [item.name for item in self.readiness if not item.ok]

    def as_dict(self) -> dict[str, Any]:
        if self.action == "check_ready":
            return {
                "action": self.action,
                "status": "not_ready" if self.not_ready else "ok",
                "not_ready": self.not_ready,
                "readiness": [item.as_dict() for item in self.readiness],
                "seconds_used": round(self.seconds_used, 3),
            }
        return {
            "action": self.action,
            "status": "incomplete" if self.failed else "ok",
            "changed": self.count(*CAPACITY_CHANGES),
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
    book_ready_check: Callable[[], Change] | None = None,
    backoff: Backoff | None = None,
) -> RunSummary:
    """:param book_ready_check: books the readiness check after a scale-up that found records."""
    policy = backoff or DEFAULT_BACKOFF
    summary = RunSummary(action)
    cluster, namespace = settings.cluster.name, settings.namespace
    if action == "check_ready":
        summary.readiness = [readiness.check(k8s, namespace, name) for name in settings.deployments]
    elif action == "scale_down":
        for name in settings.deployments:
            summary.changes.append(deployments.scale_down(k8s, namespace, name, settings.floor_replicas))
            summary.changes.append(scaledobjects.pause(k8s, namespace, name, settings.floor_replicas))
        if summary.failed:
            summary.changes += [
                Change("nodegroup", name, "skipped", reason="a model was not scaled down and held")
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
        for name in settings.deployments:
            # KEDA first: once resumed it keeps minReplicaCount, and the restore below wins a
            # conflict by re-reading, so replicas end at max(recorded, what KEDA set).
            resumed = scaledobjects.resume(k8s, namespace, name)
            summary.changes.append(resumed)
            keda_resumed = resumed.result != "failed"
            summary.changes.append(deployments.scale_up(k8s, namespace, name, keda_resumed=keda_resumed))
        _book_then_forget(
            summary, settings, k8s=k8s, eks=eks, book=book_ready_check, deadline=deadline, backoff=policy
        )
    return summary


def _book_then_forget(
    summary: RunSummary,
    settings: ScalerSettings,
    *,
    k8s: K8sClient,
    eks: Any,
    book: Callable[[], Change] | None,
    deadline: Deadline,
    backoff: Backoff,
) -> None:
    """Book the readiness check if any item held a record, then remove the restored items' records."""
    holding = [change for change in summary.changes if change.record]
    if not holding:
        return  # a morning that restored nothing: no check
    if book and settings.deployments:
        booking = book()
        summary.changes.append(booking)
        if booking.result == "failed":
            return  # records kept: the retry finds them, and books again
    done = [change for change in holding if change.result != "failed"]
    arns = {change.name: change.record for change in done if change.kind == "nodegroup"}
    forgotten = nodegroups.run_all(
        tuple(arns),
        lambda name: nodegroups.forget(eks, name, arns[name]),
        deadline,
        backoff,
    )
    forgotten += [
        deployments.forget(k8s, settings.namespace, change.name)
        for change in done
        if change.kind == "deployment"
    ]
    summary.changes += [change for change in forgotten if change.result == "failed"]
