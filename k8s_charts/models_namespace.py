"""The `models` namespace: restricted Pod Security enforced, and a default-deny NetworkPolicy."""

from __future__ import annotations

import cdk8s
from constructs import Construct

from contract.kubernetes import MODELS_NAMESPACE
from k8s_charts.api_object import api_object

POD_SECURITY_LEVEL = "restricted"
ALB_READINESS_GATE_LABEL = "elbv2.k8s.aws/pod-readiness-gate-inject"


class ModelsNamespaceChart(cdk8s.Chart):
    """Applied before every model chart: they all live in this namespace."""

    def __init__(self, scope: Construct, id_: str) -> None:
        super().__init__(scope, id_, disable_resource_name_hashes=True)
        # The admission controller rejects any pod here that breaks the restricted profile.
        labels = {
            f"pod-security.kubernetes.io/{mode}": POD_SECURITY_LEVEL for mode in ("enforce", "audit", "warn")
        }
        # The LB controller adds a readiness gate: a rollout waits until the new pod is healthy in
        # the ALB target group, not just in Kubernetes.
        labels[ALB_READINESS_GATE_LABEL] = "enabled"
        self.namespace_object = cdk8s.ApiObject(
            self,
            "Namespace",
            api_version="v1",
            kind="Namespace",
            metadata=cdk8s.ApiObjectMetadata(name=MODELS_NAMESPACE, labels=labels),
        )
        # Every pod in the namespace starts with no traffic in or out; each model chart opens
        # exactly what its pods need.
        self.default_deny = api_object(
            self,
            "DefaultDeny",
            api_version="networking.k8s.io/v1",
            kind="NetworkPolicy",
            metadata=cdk8s.ApiObjectMetadata(name="default-deny", namespace=MODELS_NAMESPACE),
            spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        )
