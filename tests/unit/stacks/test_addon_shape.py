"""Every add-on has the one shape (constructs_lib/addons/helm.py) and every pod role is a PodIdentityRole.

Read from the construct tree of each synthesised stage, so an add-on or role added in any stack is
covered without being listed here.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_eks as eks_l1
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam

from constructs_lib.addons.alb_controller import AlbControllerAddon
from constructs_lib.addons.helm import HelmAddon
from constructs_lib.pod_identity import POD_IDENTITY_PRINCIPAL, PodIdentityRole
from tests.synth import SynthResult


def _stacks(synth: SynthResult, stage: str) -> list[Stack]:
    return [child for child in synth.stages[stage].node.children if isinstance(child, Stack)]


def test_every_helm_release_belongs_to_an_add_on(synth: SynthResult, stage: str) -> None:
    for stack in _stacks(synth, stage):
        for node in stack.node.find_all():
            if isinstance(node, eks.HelmChart):
                assert isinstance(node.node.scope, HelmAddon), node.node.path


def test_the_load_balancer_controller_is_an_add_on(synth: SynthResult, stage: str) -> None:
    controller = synth.stages[stage].serving.alb_controller
    assert isinstance(controller, AlbControllerAddon)
    assert controller.identity is not None


def test_add_ons_wait_for_the_pod_identity_agent_exactly_when_they_have_an_identity(
    synth: SynthResult, stage: str
) -> None:
    platform = synth.stages[stage].platform
    agent = platform.managed_addons.addons["eks-pod-identity-agent"]
    addons = [node for node in platform.node.find_all() if isinstance(node, HelmAddon)]
    assert {addon.identity is not None for addon in addons} == {True, False}
    for addon in addons:
        waits = agent in addon.chart.node.dependencies
        assert waits == (addon.identity is not None), addon.node.path
        if addon.identity is not None:
            assert addon.identity.association in addon.chart.node.dependencies, addon.node.path


def test_every_pod_identity_association_and_pod_role_comes_from_pod_identity_role(
    synth: SynthResult, stage: str
) -> None:
    identities = {
        node.node.path: node
        for stack in _stacks(synth, stage)
        for node in stack.node.find_all()
        if isinstance(node, PodIdentityRole)
    }
    roles = {identity.role.node.path for identity in identities.values()}
    for stack in _stacks(synth, stage):
        for node in stack.node.find_all():
            if isinstance(node, eks_l1.CfnPodIdentityAssociation):
                assert isinstance(node.node.scope, PodIdentityRole), node.node.path
            if isinstance(node, iam.Role):
                trust = stack.resolve(node.assume_role_policy.to_json()) if node.assume_role_policy else {}
                if POD_IDENTITY_PRINCIPAL in str(trust):
                    assert node.node.path in roles, node.node.path
