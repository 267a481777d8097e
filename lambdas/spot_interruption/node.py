"""Find the Kubernetes node of an EC2 instance, then cordon and taint it."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from contract.kubernetes import REBALANCE_TAINT_KEY, SPOT_INTERRUPTION_TAINT_KEY
from lambdas.common.k8s import ConflictError, JsonObject, K8sClient, K8sError, NotFoundError

TAINT_KEYS = {
    "interruption": SPOT_INTERRUPTION_TAINT_KEY,
    "rebalance": REBALANCE_TAINT_KEY,
}
MAX_PATCH_ATTEMPTS = 5


@dataclass(frozen=True)
class Instance:
    instance_id: str
    az: str
    private_dns_name: str

    @property
    def provider_id(self) -> str:
        return f"aws:///{self.az}/{self.instance_id}"


def describe_instance(ec2: Any, instance_id: str) -> Instance | None:
    """The instance's AZ and DNS name; None when EC2 does not know it (already gone)."""
    try:
        response = ec2.describe_instances(InstanceIds=[instance_id])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidInstanceID.NotFound":
            return None
        raise
    for reservation in response.get("Reservations", []):
        for instance in reservation.get("Instances", []):
            if instance.get("InstanceId") == instance_id:
                return Instance(
                    instance_id=instance_id,
                    az=instance["Placement"]["AvailabilityZone"],
                    private_dns_name=instance.get("PrivateDnsName", ""),
                )
    return None


def find_node(k8s: K8sClient, instance: Instance) -> JsonObject | None:
    """The node whose spec.providerID is this instance's, or None if it is not in the cluster."""
    # EKS names nodes after the private DNS name: one GET usually avoids listing every node,
    # but the name alone is not trusted (another cluster's naming may differ).
    if instance.private_dns_name:
        try:
            node = k8s.get_node(instance.private_dns_name)
        except NotFoundError:
            pass
        else:
            if node.get("spec", {}).get("providerID") == instance.provider_id:
                return node
    for node in k8s.list_nodes():
        if node.get("spec", {}).get("providerID") == instance.provider_id:
            return node
    return None


EVENT_REASONS = {"interruption": "SpotInterruption", "rebalance": "RebalanceRecommendation"}


def record_node_event(k8s: K8sClient, node: JsonObject, *, kind: str, message: str) -> str:
    """Post a Warning Event on the node so `kubectl describe node` says what happened.

    Best effort: returns "" on success, else the cause (the drain matters more than the event).
    """
    name = node["metadata"]["name"]
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event: JsonObject = {
        "apiVersion": "v1",
        "kind": "Event",
        # Node events live in "default", as the kubelet's do.
        "metadata": {"generateName": f"{name}.", "namespace": "default"},
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Node",
            "name": name,
            "uid": node["metadata"].get("uid", name),
        },
        "reason": EVENT_REASONS[kind],
        "message": message,
        "type": "Warning",
        "source": {"component": "spot-interruption-lambda"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        k8s.create_event("default", event)
    except K8sError as exc:
        return str(exc)
    return ""


def taint_value(event_id: str) -> str:
    """A taint value must be a valid label value: 63 chars of [A-Za-z0-9_.-], alphanumeric ends."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", event_id)[:63].strip("-_.")


@dataclass
class CordonResult:
    cordoned: bool  # this invocation set spec.unschedulable
    tainted: bool  # this invocation added the taint
    conflicts: int  # 409s retried


def cordon_and_taint(
    k8s: K8sClient,
    node: JsonObject,
    *,
    taint_key: str,
    event_id: str,
    sleep: Callable[[float], None] = time.sleep,
) -> CordonResult:
    """Cordon, then add a NoSchedule taint; a node already cordoned or tainted is fine."""
    name = node["metadata"]["name"]
    result = CordonResult(cordoned=False, tainted=False, conflicts=0)
    for attempt in range(1, MAX_PATCH_ATTEMPTS + 1):
        spec = node.get("spec", {})
        try:
            if not spec.get("unschedulable"):
                node = k8s.patch_node(name, {"spec": {"unschedulable": True}})
                result.cordoned = True
                spec = node.get("spec", {})
            taints = list(spec.get("taints") or [])
            if any(t.get("key") == taint_key for t in taints):
                return result  # a duplicate or concurrent event got here first
            taints.append({"key": taint_key, "value": taint_value(event_id), "effect": "NoSchedule"})
            # taints is a list without a merge key: send the whole list, guarded by the
            # resourceVersion we read, so a concurrent writer's taint is never dropped (409).
            patch = {
                "metadata": {"resourceVersion": node["metadata"].get("resourceVersion")},
                "spec": {"taints": taints},
            }
            k8s.patch_node(name, patch)
            result.tainted = True
            return result
        except ConflictError:
            result.conflicts += 1
            if attempt == MAX_PATCH_ATTEMPTS:
                raise
            sleep(0.1 * attempt)
            node = k8s.get_node(name)
    return result
