"""Issue #14 item 3: every Pod Identity role trusts only its own service account, namespace and
cluster, in its own account (EKS user guide, pod-id-role and pod-id-abac session tags)."""

from __future__ import annotations

import json
from typing import Any

from stacks.cluster_stack import cluster_name_for
from tests.synth import SynthResult
from tests.templates import resources

POD_IDENTITY = "pods.eks.amazonaws.com"


def pod_roles(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: role
        for logical_id, role in resources(template, "AWS::IAM::Role").items()
        if POD_IDENTITY in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    }


def is_this_cluster(value: Any, stage: str) -> bool:
    """The literal cluster name, or the cluster stack's output of its Ref (the name)."""
    if value == cluster_name_for(stage):
        return True
    output = value.get("Fn::GetStackOutput", {}) if isinstance(value, dict) else {}
    return bool(
        output.get("StackName") == f"{stage}-Cluster"
        and output.get("OutputName", "").startswith("PublishOutputRefCluster")
    )


def test_every_pod_role_is_bound_and_conditioned_on_its_association(synth: SynthResult, stage: str) -> None:
    config = synth.configs[stage]
    account = config.account or {"Ref": "AWS::AccountId"}
    checked = 0
    for name, template in synth.templates[stage].items():
        associations = {
            association["Properties"]["RoleArn"]["Fn::GetAtt"][0]: association["Properties"]
            for association in resources(template, "AWS::EKS::PodIdentityAssociation").values()
        }
        for logical_id, role in pod_roles(template).items():
            assert logical_id in associations, f"{name}/{logical_id} has no Pod Identity association"
            association = associations[logical_id]
            assert is_this_cluster(association["ClusterName"], stage), logical_id
            for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
                assert statement["Principal"] == {"Service": POD_IDENTITY}, logical_id
                assert sorted(statement["Action"]) == ["sts:AssumeRole", "sts:TagSession"], logical_id
                assert statement["Condition"] == {
                    "StringEquals": {
                        "aws:SourceAccount": account,
                        # The association's cluster: a literal, or the cluster stack's output.
                        "aws:RequestTag/eks-cluster-name": association["ClusterName"],
                        "aws:RequestTag/kubernetes-namespace": association["Namespace"],
                        "aws:RequestTag/kubernetes-service-account": association["ServiceAccount"],
                    }
                }, f"{name}/{logical_id}"
            checked += 1
    # ALB controller, EBS CSI, autoscaler, KEDA, Fluent Bit, OTel, External Secrets, model readers.
    readers = sum(1 for model in config.models for version in model.versions if version.from_stage_bucket)
    assert checked >= 7 + readers
