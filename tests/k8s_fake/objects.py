"""Builders for the Kubernetes objects the fake serves, shaped like real API responses."""

from __future__ import annotations

from typing import Any


def make_node(
    name: str,
    instance_id: str,
    *,
    az: str = "us-east-1a",
    unschedulable: bool = False,
    taints: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"providerID": f"aws:///{az}/{instance_id}"}
    if unschedulable:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = list(taints)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "topology.kubernetes.io/zone": az,
                "eks.amazonaws.com/capacityType": "SPOT",
            },
        },
        "spec": spec,
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def make_pod(
    name: str,
    node_name: str,
    *,
    namespace: str = "models",
    owner_kind: str | None = "ReplicaSet",
    phase: str = "Running",
    mirror: bool = False,
    empty_dir: bool = False,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": f"uid-{name}"}
    if owner_kind:
        owner = {"apiVersion": "apps/v1", "kind": owner_kind, "name": f"{name}-owner"}
        metadata["ownerReferences"] = [{**owner, "controller": True}]
    if mirror:
        metadata["annotations"] = {"kubernetes.io/config.mirror": "abc123"}
    spec: dict[str, Any] = {"nodeName": node_name, "containers": [{"name": "main", "image": "x"}]}
    if empty_dir:
        spec["volumes"] = [{"name": "cache", "emptyDir": {}}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": phase},
    }


def make_deployment(
    name: str,
    replicas: int,
    *,
    namespace: str = "models",
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels or {"app.kubernetes.io/component": "model-server"}),
            "annotations": dict(annotations or {}),
        },
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}},
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }


def make_scaled_object(
    name: str,
    min_replicas: int,
    max_replicas: int = 8,
    *,
    namespace: str = "models",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A KEDA ScaledObject for the Deployment of the same name (the serving chart's naming)."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": namespace, "annotations": dict(annotations or {})},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicaCount": min_replicas,
            "maxReplicaCount": max_replicas,
        },
    }
