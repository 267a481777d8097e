"""A replaced GPU node group is visible in the templates that read its name from another stack.

``@aws-cdk/core:defaultCrossStackReferences: weak`` makes consumers read node-group names with
``Fn::GetStackOutput``, which CloudFormation evaluates only when the consumer stack is updated. A
change to a create-only property (CloudFormation resource schema of AWS::EKS::Nodegroup, as bundled
with cfn-lint) replaces the group under a new generated name; the consumers (Cluster Autoscaler
priorities, the off-hours scaler) carry a digest of exactly those inputs, so their templates change
too and they are deployed again.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from config import StageConfig
from config.cluster import CapacityType
from constructs_lib.gpu_node_group import NODE_GROUPS_REVISION_ANNOTATION, REPLACEMENT_INPUTS, replacement_key
from stacks.cluster_stack import gpu_node_groups_revision
from tests.synth import SynthResult
from tests.templates import helm_releases, resources


def _create_only() -> set[str]:
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", "AWS::EKS::Nodegroup").schema
    return {path.removeprefix("/properties/") for path in schema["createOnlyProperties"]}


def test_the_covered_inputs_are_create_only_properties() -> None:
    assert set(REPLACEMENT_INPUTS) <= _create_only()


def test_every_create_only_property_a_gpu_group_sets_is_covered(synth: SynthResult, stage: str) -> None:
    groups = [
        g
        for g in resources(synth.templates[stage]["Cluster"], "AWS::EKS::Nodegroup").values()
        if g["Properties"]["AmiType"].endswith("_NVIDIA")
    ]
    assert groups
    for group in groups:
        set_here = set(group["Properties"]) & _create_only()
        assert set_here - {"NodegroupName"} <= set(REPLACEMENT_INPUTS), set_here


def test_replacement_key_covers_exactly_the_inputs(synth: SynthResult, stage: str) -> None:
    config = synth.configs[stage]
    for group in config.cluster.gpu_node_groups:
        key = replacement_key(group, cluster_name="c", availability_zones=["a", "b"], vpc_cidr="10.0.0.0/16")
        assert tuple(sorted(key)) == tuple(sorted(REPLACEMENT_INPUTS))


def _changed(config: StageConfig, change: str) -> StageConfig:
    group = config.cluster.gpu_node_groups[0]
    if change == "instance_types":
        other = "g6.xlarge" if group.instance_types != ["g6.xlarge"] else "g5.xlarge"
        new_group = group.model_copy(update={"instance_types": [other]})
    elif change == "capacity_type":
        flipped = CapacityType.ON_DEMAND if group.capacity_type is CapacityType.SPOT else CapacityType.SPOT
        new_group = group.model_copy(update={"capacity_type": flipped})
    else:
        new_group = group
    cluster = config.cluster.model_copy(
        update={"gpu_node_groups": [new_group, *config.cluster.gpu_node_groups[1:]]}
    )
    updates: dict[str, Any] = {"cluster": cluster}
    if change == "zones":
        updates["availability_zones"] = [*list(config.availability_zones)[:-1], "zz-other-1z"]
    if change == "vpc_cidr":
        updates["network"] = config.network.model_copy(update={"vpc_cidr": "10.99.0.0/16"})
    return config.model_copy(update=updates)


@pytest.mark.parametrize("change", ["instance_types", "capacity_type", "zones", "vpc_cidr"])
def test_a_replacing_change_changes_the_revision(synth: SynthResult, change: str) -> None:
    config = synth.configs["dev"]
    before = gpu_node_groups_revision(config, list(config.cluster.gpu_node_groups))
    changed = _changed(config, change)
    assert gpu_node_groups_revision(changed, list(changed.cluster.gpu_node_groups)) != before


def test_a_scaling_change_keeps_the_revision(synth: SynthResult) -> None:
    config = synth.configs["dev"]
    group = config.cluster.gpu_node_groups[0]
    bigger = group.model_copy(update={"max_size": group.max_size + 1})
    changed = config.model_copy(
        update={
            "cluster": config.cluster.model_copy(
                update={"gpu_node_groups": [bigger, *config.cluster.gpu_node_groups[1:]]}
            )
        }
    )
    assert gpu_node_groups_revision(
        changed, list(changed.cluster.gpu_node_groups)
    ) == gpu_node_groups_revision(config, list(config.cluster.gpu_node_groups))


def test_the_autoscaler_release_carries_the_revision(synth: SynthResult, stage: str) -> None:
    config = synth.configs[stage]
    values = helm_releases(synth.templates[stage]["Platform"])["cluster-autoscaler"]["Values"]
    expected = gpu_node_groups_revision(config, list(config.cluster.gpu_node_groups))
    assert values["podAnnotations"][NODE_GROUPS_REVISION_ANNOTATION] == expected


def test_the_offhours_scaler_carries_the_revision(synth: SynthResult, stage: str) -> None:
    config = synth.configs[stage]
    functions = [
        f["Properties"]
        for f in resources(synth.templates[stage]["Ops"], "AWS::Lambda::Function").values()
        if "NODE_GROUPS" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    if not config.offhours.enabled or not config.offhours_node_groups:
        assert functions == []
        return
    (function,) = functions
    variables = function["Environment"]["Variables"]
    assert "Fn::GetStackOutput" in json.dumps(variables["NODE_GROUPS"])  # the weak reference it guards
    assert variables["NODE_GROUPS_REVISION"] == gpu_node_groups_revision(
        config, list(config.offhours_node_groups)
    )
