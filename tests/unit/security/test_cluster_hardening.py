"""Issue #14 items 8 and 9: no implicit cluster admin for the deployer; control-plane and kubectl
provider logs encrypted with the stage's logs key and kept for the stage's retention."""

from __future__ import annotations

import json
from typing import Any

from stacks.cluster_stack import cluster_name_for, control_plane_log_group_name
from tests.synth import SynthResult
from tests.unit.stacks.cfn import resources


def cluster_template(synth: SynthResult, stage: str) -> dict[str, Any]:
    return synth.templates[stage]["Cluster"]


def test_the_deployer_gets_no_bootstrap_admin(synth: SynthResult, stage: str) -> None:
    (cluster,) = resources(cluster_template(synth, stage), "AWS::EKS::Cluster").values()
    assert cluster["Properties"]["AccessConfig"]["BootstrapClusterCreatorAdminPermissions"] is False
    # The kubectl provider still reaches the API through its own access entry.
    principals = json.dumps(
        [
            entry["Properties"]["PrincipalArn"]
            for entry in resources(cluster_template(synth, stage), "AWS::EKS::AccessEntry").values()
        ]
    )
    assert "KubectlProviderHandlerServiceRole" in principals


def test_every_cluster_stack_log_group_is_encrypted_with_the_logs_key_and_kept(
    synth: SynthResult, stage: str
) -> None:
    groups = resources(cluster_template(synth, stage), "AWS::Logs::LogGroup")
    assert len(groups) == 3  # control plane + the kubectl provider's two Lambdas
    for logical_id, group in groups.items():
        key = json.dumps(group["Properties"]["KmsKeyId"])
        assert "LogsKey" in key, logical_id
        assert group["Properties"]["RetentionInDays"] == synth.configs[stage].log_retention_days, logical_id


def test_control_plane_log_group_exists_before_the_cluster(synth: SynthResult, stage: str) -> None:
    template = cluster_template(synth, stage)
    name = control_plane_log_group_name(cluster_name_for(stage))
    (group_id,) = [
        logical_id
        for logical_id, group in resources(template, "AWS::Logs::LogGroup").items()
        if group["Properties"].get("LogGroupName") == name
    ]
    (cluster,) = resources(template, "AWS::EKS::Cluster").values()
    assert group_id in cluster["DependsOn"]
    assert template["Resources"][group_id]["DeletionPolicy"] == "Retain"
