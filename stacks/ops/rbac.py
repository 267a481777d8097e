"""Kubernetes RBAC of the operational functions, as plain manifests (lambdas/README.md lists the needs).

Each function's IAM role is mapped by its EKS access entry to one Kubernetes group; these
objects bind that group to exactly the verbs its code uses.
"""

from __future__ import annotations

from typing import Any

from contract.kubernetes import MODELS_NAMESPACE

Manifest = dict[str, Any]

SPOT_INTERRUPTION_GROUP = "llm-inference:spot-interruption"
OFFHOURS_SCALER_GROUP = "llm-inference:offhours-scaler"
_LABELS = {"app.kubernetes.io/part-of": "llm-inference", "app.kubernetes.io/component": "operations"}

SPOT_INTERRUPTION_RULES: list[Manifest] = [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "patch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]
"""Find the node, cordon and taint it (patch), list its pods, evict them, record events."""

OFFHOURS_SCALER_RULES: list[Manifest] = [
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "patch"]},
    {"apiGroups": ["keda.sh"], "resources": ["scaledobjects"], "verbs": ["get", "patch"]},
]
"""Read Deployments and patch replicas + the restore annotation together (no deployments/scale);
pause and resume KEDA on the models' ScaledObjects (annotations only)."""


def spot_interruption_rbac(name: str) -> list[Manifest]:
    """A ClusterRole (nodes are cluster-scoped, pods are everywhere) and its binding to the group."""
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": _LABELS},
            "rules": SPOT_INTERRUPTION_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": _LABELS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": SPOT_INTERRUPTION_GROUP}
            ],
        },
    ]


def offhours_scaler_rbac(name: str, *, namespace: str = MODELS_NAMESPACE) -> list[Manifest]:
    """A Role and RoleBinding in the model namespace only."""
    metadata = {"name": name, "namespace": namespace, "labels": _LABELS}
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": metadata,
            "rules": OFFHOURS_SCALER_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": OFFHOURS_SCALER_GROUP}
            ],
        },
    ]
