"""The shape of every add-on: a pinned Helm chart, the release that installs it through the cluster's
kubectl provider, and at most one Pod Identity role for the add-on's pods."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from constructs_lib.pod_identity import PodIdentityRole
from contract.kubernetes import GPU_MODEL_LABEL, GPU_TAINT_KEY, NODE_GROUP_LABEL, SYSTEM_NODE_GROUP

GPU_TAINT_TOLERATION = {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
"""Tolerates the taint every GPU node group carries (constructs_lib.gpu_node_group)."""
TOLERATE_EVERYTHING = [{"operator": "Exists"}]
"""For per-node agents (logs, node metrics) that must run on every node whatever its taints."""
SYSTEM_NODES = {NODE_GROUP_LABEL: SYSTEM_NODE_GROUP}
"""Controllers run on the on-demand system group, never on (possibly Spot) GPU nodes."""


def gpu_nodes_only() -> dict[str, Any]:
    """Node affinity to nodes that carry the GPU model label, which only GPU node groups have."""
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": GPU_MODEL_LABEL, "operator": "Exists"}]}]
            }
        }
    }


@dataclass(frozen=True)
class HelmSource:
    """Where a chart comes from and the exact version installed (never a range)."""

    chart: str
    repository: str
    version: str
    namespace: str
    release: str


def _helm_release(
    scope: Construct,
    id_: str,
    *,
    cluster: eks.ICluster,
    source: HelmSource,
    values: Mapping[str, Any],
    timeout_minutes: int | None = 10,
) -> eks.HelmChart:
    """Install ``source`` with ``values``; waits for the release so dependants see it ready.

    :param timeout_minutes: how long Helm may wait; None leaves Helm's own default (5). Default: 10.
    """
    return eks.HelmChart(
        scope,
        id_,
        cluster=cluster,
        chart=source.chart,
        repository=source.repository,
        version=source.version,
        namespace=source.namespace,
        release=source.release,
        create_namespace=True,
        values=dict(values),
        wait=True,
        timeout=Duration.minutes(timeout_minutes) if timeout_minutes is not None else None,
    )


class HelmAddon(Construct):
    """Base of every add-on installed into the cluster as a Helm release of ``source``.

    Exposes ``source``, ``chart`` and ``identity``: the add-on's Pod Identity role, or None when its
    pods need no AWS permissions. A subclass calls ``_pod_identity`` (if its pods need AWS) and then
    ``_install``; the release then waits for the association, and ``wait_for_pod_identity_agent``
    makes it wait for the agent too, so the list of add-ons that need the agent is never written.
    """

    chart: eks.HelmChart

    def __init__(self, scope: Construct, id_: str, *, source: HelmSource) -> None:
        super().__init__(scope, id_)
        self.source = source
        self.identity: PodIdentityRole | None = None

    def _pod_identity(
        self, *, cluster_name: str, service_account: str, statements: Sequence[iam.PolicyStatement]
    ) -> PodIdentityRole:
        """The add-on's one Pod Identity role (construct id ``Identity``), for ``service_account`` in
        the release's namespace."""
        assert self.identity is None, "an add-on has one Pod Identity role"
        self.identity = PodIdentityRole(
            self,
            "Identity",
            cluster_name=cluster_name,
            namespace=self.source.namespace,
            service_account=service_account,
            statements=statements,
        )
        return self.identity

    def _install(
        self,
        *,
        cluster: eks.ICluster,
        values: Mapping[str, Any],
        timeout_minutes: int | None = 10,
        chart_id: str = "Chart",
    ) -> eks.HelmChart:
        """The release; with an identity it waits for the association, since Pod Identity injects
        credentials at pod creation.

        :param chart_id: the release's construct id. Default: ``Chart``; ``Default`` keeps the logical
            id of a release that was created directly under this add-on's id before.
        """
        self.chart = _helm_release(
            self,
            chart_id,
            cluster=cluster,
            source=self.source,
            values=values,
            timeout_minutes=timeout_minutes,
        )
        if self.identity is not None:
            self.chart.node.add_dependency(self.identity.association)
        return self.chart


def wait_for_pod_identity_agent(addons: Iterable[HelmAddon], agent: IConstruct) -> None:
    """Pod Identity credentials need the agent on the node: every add-on with an identity waits for it."""
    for addon in addons:
        if addon.identity is not None:
            addon.chart.node.add_dependency(agent)
