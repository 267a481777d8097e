"""Cluster Autoscaler (AWS provider) facts the GPU node groups must honour, on every stage.

From kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws (aws_cloud_provider.go and the
provider README):
- ``GPULabel = "k8s.amazonaws.com/accelerator"``: a node with it but without allocatable GPUs is
  treated as still starting, so the autoscaler does not scale up again for the same pods.
- auto-discovery by the tags ``k8s.io/cluster-autoscaler/enabled`` and
  ``k8s.io/cluster-autoscaler/<cluster>``;
- scale from zero by the node-template tags ``.../node-template/resources/<resource>``,
  ``.../node-template/taint/<key>`` (``value:Effect``) and ``.../node-template/label/<key>``.
And from the EKS API: node-group labels may not contain ``kubernetes.io/``, ``k8s.io/`` or
``eks.amazonaws.com/``; label values are at most 63 characters.
"""

from __future__ import annotations

import re
from typing import Any

from constructs_lib.addons.cluster_autoscaler import discovery_tags
from contract.kubernetes import NODE_GROUP_LABEL
from tests.synth import SynthResult
from tests.templates import helm_releases, resources

GPU_LABEL = "k8s.amazonaws.com/accelerator"
TAG_PREFIX = "k8s.io/cluster-autoscaler"
EKS_RESERVED_LABEL_PREFIXES = ("kubernetes.io/", "k8s.io/", "eks.amazonaws.com/")
TAINT_EFFECTS = {
    "NO_SCHEDULE": "NoSchedule",
    "NO_EXECUTE": "NoExecute",
    "PREFER_NO_SCHEDULE": "PreferNoSchedule",
}
"""EKS API taint effects -> the Kubernetes effect the node-template taint tag names."""
LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def _gpu_nodegroups(synth: SynthResult, stage: str) -> dict[str, dict[str, Any]]:
    groups = resources(synth.templates[stage]["Cluster"], "AWS::EKS::Nodegroup").values()
    return {
        group["Properties"]["Labels"][NODE_GROUP_LABEL]: group["Properties"]
        for group in groups
        if group["Properties"]["AmiType"].endswith("_NVIDIA")
    }


def test_gpu_nodes_carry_the_autoscalers_gpu_label_with_their_gpu_model(
    synth: SynthResult, stage: str
) -> None:
    nodegroups = _gpu_nodegroups(synth, stage)
    assert nodegroups
    for group in synth.configs[stage].cluster.gpu_node_groups:
        labels = nodegroups[group.name]["Labels"]
        assert labels[GPU_LABEL] == f"nvidia-{group.instance.gpu_model.lower()}"


def test_every_label_is_mirrored_as_a_node_template_tag(synth: SynthResult, stage: str) -> None:
    """Scale from zero: an empty group's would-be node must match the pods' selectors."""
    for name, props in _gpu_nodegroups(synth, stage).items():
        for key, value in props["Labels"].items():
            assert props["Tags"][f"{TAG_PREFIX}/node-template/label/{key}"] == value, (name, key)


def test_discovery_resource_and_taint_tags(synth: SynthResult, stage: str) -> None:
    cluster_name = f"llm-inference-{stage}"
    nodegroups = _gpu_nodegroups(synth, stage)
    for group in synth.configs[stage].cluster.gpu_node_groups:
        tags = nodegroups[group.name]["Tags"]
        assert tags[f"{TAG_PREFIX}/enabled"] == "true"
        assert tags[f"{TAG_PREFIX}/{cluster_name}"] == "owned"
        assert tags[f"{TAG_PREFIX}/node-template/resources/nvidia.com/gpu"] == str(group.gpus_per_node)
        for taint in nodegroups[group.name]["Taints"]:
            assert tags[f"{TAG_PREFIX}/node-template/taint/{taint['Key']}"] == (
                f"{taint['Value']}:{TAINT_EFFECTS[taint['Effect']]}"
            )


def test_the_autoscaler_discovers_by_the_tags_the_groups_carry(synth: SynthResult, stage: str) -> None:
    cluster_name = f"llm-inference-{stage}"
    values = helm_releases(synth.templates[stage]["Platform"])["cluster-autoscaler"]["Values"]
    assert values["autoDiscovery"]["tags"] == discovery_tags(cluster_name)
    for props in _gpu_nodegroups(synth, stage).values():
        assert all(tag in props["Tags"] for tag in discovery_tags(cluster_name))


def test_labels_are_valid_for_the_eks_api(synth: SynthResult, stage: str) -> None:
    for template in [synth.templates[stage]["Cluster"]]:
        for group in resources(template, "AWS::EKS::Nodegroup").values():
            for key, value in group["Properties"].get("Labels", {}).items():
                assert not any(prefix in key for prefix in EKS_RESERVED_LABEL_PREFIXES), key
                assert LABEL_VALUE.match(value), (key, value)
