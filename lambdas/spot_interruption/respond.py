"""What one interruption or rebalance event does, with clients passed in (testable as is)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lambdas.common.k8s import K8sClient
from lambdas.common.retry import Backoff, Deadline
from lambdas.spot_interruption.drain import evict_pods, select_pods
from lambdas.spot_interruption.events import SpotEvent
from lambdas.spot_interruption.node import (
    TAINT_KEYS,
    cordon_and_taint,
    describe_instance,
    find_node,
    record_node_event,
)

# Time kept free at the end of the invocation to log the summary and flush metrics.
LAMBDA_MARGIN_SECONDS = 3.0


def choose_action(event: SpotEvent, rebalance_action: str) -> str:
    """A Spot warning always drains; a rebalance recommendation does what the stage chose."""
    return "drain" if event.kind == "interruption" else rebalance_action


@dataclass
class Summary:
    event_id: str
    instance_id: str
    kind: str
    action: str
    status: str = "ok"  # ok | incomplete | not_a_cluster_node | ignored
    node: str = ""
    cordoned: bool = False
    tainted: bool = False
    evicted: int = 0
    already_gone: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    eviction_retries: int = 0
    node_event_error: str = ""  # why the Kubernetes Event could not be posted (best effort)
    seconds_used: float = 0.0
    seconds_to_deadline: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "instance_id": self.instance_id,
            "kind": self.kind,
            "action": self.action,
            "status": self.status,
            "node": self.node,
            "cordoned": self.cordoned,
            "tainted": self.tainted,
            "evicted": self.evicted,
            "already_gone": self.already_gone,
            "skipped": len(self.skipped),
            "skipped_pods": self.skipped,
            "failed": len(self.failed),
            "failed_pods": self.failed,
            "pending": len(self.pending),
            "pending_pods": self.pending,
            "eviction_retries": self.eviction_retries,
            "node_event_error": self.node_event_error,
            "seconds_used": round(self.seconds_used, 3),
            "seconds_to_deadline": round(self.seconds_to_deadline, 3),
        }


def respond(
    event: SpotEvent,
    action: str,
    *,
    ec2: Any,
    k8s: K8sClient,
    concurrency: int,
    safety_seconds: float,
    lambda_end: float | None = None,
    clock: Callable[[], float] = time.time,
    backoff: Backoff | None = None,
) -> Summary:
    """Act on one event. Eviction retries stop `safety_seconds` before the event's deadline,
    or `LAMBDA_MARGIN_SECONDS` before `lambda_end` (epoch) if the function times out sooner,
    so the summary is always logged."""
    started = clock()
    stop_at = event.deadline
    if lambda_end is not None:
        stop_at = min(stop_at, lambda_end - LAMBDA_MARGIN_SECONDS + safety_seconds)
    deadline = Deadline(stop_at, clock=clock)
    summary = Summary(event.event_id, event.instance_id, event.kind, action)
    if action == "ignore":
        summary.status = "ignored"
    else:
        _act(summary, event, action, ec2, k8s, deadline, concurrency, safety_seconds, backoff)
    summary.seconds_used = clock() - started
    summary.seconds_to_deadline = event.deadline - clock()
    return summary


def _act(
    summary: Summary,
    event: SpotEvent,
    action: str,
    ec2: Any,
    k8s: K8sClient,
    deadline: Deadline,
    concurrency: int,
    safety_seconds: float,
    backoff: Backoff | None,
) -> None:
    instance = describe_instance(ec2, event.instance_id)
    node = find_node(k8s, instance) if instance else None
    if node is None:
        summary.status = "not_a_cluster_node"
        return
    summary.node = node["metadata"]["name"]
    cordon = cordon_and_taint(k8s, node, taint_key=TAINT_KEYS[event.kind], event_id=event.event_id)
    summary.cordoned, summary.tainted = cordon.cordoned, cordon.tainted
    if cordon.tainted:  # only the first event for this node records it
        what = "cordoned, tainted" + (" and draining" if action == "drain" else "")
        summary.node_event_error = record_node_event(
            k8s, node, kind=event.kind, message=f"{event.kind} event {event.event_id}: {what}"
        )
    if action != "drain":
        return
    selection = select_pods(k8s.list_pods_on_node(summary.node))
    summary.skipped = selection.skipped
    outcome = evict_pods(
        k8s,
        selection.to_evict,
        deadline,
        concurrency=concurrency,
        safety_seconds=safety_seconds,
        backoff=backoff,
    )
    summary.evicted = len(outcome.evicted)
    summary.already_gone = len(outcome.already_gone)
    summary.failed = outcome.failed
    summary.pending = outcome.pending
    summary.eviction_retries = outcome.retries
    if outcome.failed or outcome.pending:
        summary.status = "incomplete"
