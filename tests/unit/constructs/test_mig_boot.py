"""MIG partitioning at boot: a MIG group's launch template carries user data that creates the group's
``all-<profile>`` layout on every GPU before kubelet starts; every other group's template has none."""

from __future__ import annotations

import base64
import email
import subprocess
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from config.cluster import GpuNodeGroupConfig
from constructs_lib.gpu_node_group import GpuNodeGroup
from constructs_lib.mig_boot import (
    KUBELET_UNITS,
    SCRIPT,
    UNIT,
    devices_per_gpu,
    layout_script,
    layout_unit,
    mig_layout_name,
)
from tests.templates import render
from tests.unit.charts.helpers import stage_config, stage_data
from tests.unit.config.test_gpu_sharing_config import mig, time_sliced

# (instance type, profile, devices per GPU) for each MIG GPU the catalog has, from config/mig_profiles.py.
CASES = [
    ("p4d.24xlarge", "2g.10gb", 3),
    ("p4d.24xlarge", "3g.20gb", 2),
    ("p4de.24xlarge", "3g.40gb", 2),
    ("p4de.24xlarge", "7g.80gb", 1),
    ("p5.48xlarge", "1g.10gb", 7),
    ("p5.48xlarge", "2g.20gb", 3),
]


def group_of(data: dict[str, Any]) -> GpuNodeGroupConfig:
    return stage_config(data).cluster.gpu_node_groups[0]


def synth(group: GpuNodeGroupConfig) -> Template:
    """A GpuNodeGroup built for the group, alone in a stack."""
    stack = Stack(App(), "Test")
    vpc = ec2.Vpc.from_vpc_attributes(stack, "Vpc", vpc_id="vpc-1", availability_zones=["eu-west-1a"])
    cluster = eks.Cluster.from_cluster_attributes(stack, "Cluster", cluster_name="c", vpc=vpc)
    GpuNodeGroup(
        stack,
        "Group",
        cluster=cluster,
        cluster_name="c",
        group=group,
        node_role=iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com")),
        subnets=ec2.SubnetSelection(subnets=[ec2.Subnet.from_subnet_id(stack, "Subnet", "subnet-1")]),
        volume_key=kms.Key(stack, "Key"),
    )
    return Template.from_stack(stack)


def synth_user_data(group: GpuNodeGroupConfig) -> str | None:
    """The launch template's user data of a GpuNodeGroup built for the group, decoded, or None."""
    templates = synth(group).find_resources("AWS::EC2::LaunchTemplate")
    (template,) = templates.values()
    user_data = template["Properties"]["LaunchTemplateData"].get("UserData")
    if user_data is None:
        return None
    return render(inline_base64(user_data["Fn::Base64"]))


def inline_base64(value: Any) -> Any:
    """Replaces each inner ``Fn::Base64`` of a literal (a MIME part's body) by its encoding, as
    CloudFormation would, so the whole user data can be read as one MIME document."""
    if isinstance(value, dict):
        if set(value) == {"Fn::Base64"} and isinstance(value["Fn::Base64"], str):
            return base64.b64encode(value["Fn::Base64"].encode()).decode()
        return {key: inline_base64(item) for key, item in value.items()}
    if isinstance(value, list):
        return [inline_base64(item) for item in value]
    return value


def shell_part(user_data: str) -> str:
    """The one shell-script part of a MIME multi-part user data, decoded."""
    message = email.message_from_string(user_data)
    assert message.is_multipart()
    parts = [part for part in message.walk() if not part.is_multipart()]
    assert len(parts) == 1
    (part,) = parts
    assert part.get_content_type() == "text/x-shellscript"
    assert part["Content-Transfer-Encoding"] == "base64"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def test_user_data_and_layout_script_are_valid_bash() -> None:
    """bash -n parses without running: a quoting or heredoc slip in the generated text fails here."""
    group = group_of(mig())
    user_data = synth_user_data(group)
    assert user_data is not None
    for text in (shell_part(user_data), layout_script(group)):
        result = subprocess.run(["/bin/bash", "-n"], input=text, text=True, capture_output=True, check=False)
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("instance", "profile", "per_gpu"), CASES)
def test_layout_splits_every_gpu_into_the_profile(instance: str, profile: str, per_gpu: int) -> None:
    group = group_of(mig(profile=profile, share=profile, instance=instance))
    assert mig_layout_name(group) == f"all-{profile}"
    assert devices_per_gpu(group) == per_gpu
    script = layout_script(group)
    assert f"-cgi {','.join([profile] * per_gpu)} -C" in script
    assert "nvidia-smi -mig 1" in script


# Every MIG GPU, p5 included: aws-cdk-lib 2.275's Nodegroup refuses an ami_type for p5 (its GPU class
# list, aws-eks-v2/lib/private/nodegroup.js isGpuInstanceType, has no P5), so GpuNodeGroup sets AmiType
# on the resource instead (test_every_gpu_group_gets_the_nvidia_ami below).
@pytest.mark.parametrize(("instance", "profile", "per_gpu"), CASES)
def test_mig_group_launch_template_runs_the_layout_before_kubelet(
    instance: str, profile: str, per_gpu: int
) -> None:
    group = group_of(mig(profile=profile, share=profile, instance=instance))
    user_data = synth_user_data(group)
    assert user_data is not None
    # EKS merges a managed node group's user data only in MIME multi-part form.
    body = shell_part(user_data)
    assert body.startswith("#!/bin/bash\n")
    assert f"-cgi {','.join([profile] * per_gpu)} -C" in body
    assert f"systemctl enable {UNIT}" in body
    assert f"systemctl start {UNIT}" in body
    assert f"ExecStart={SCRIPT}" in body


def test_unit_runs_after_the_driver_and_before_kubelet_on_every_boot() -> None:
    unit = layout_unit(group_of(mig()))
    lines = unit.splitlines()
    assert f"Before={' '.join(KUBELET_UNITS)}" in lines
    assert "nodeadm-run.service" in KUBELET_UNITS  # what starts kubelet on AL2023
    assert any(line.startswith("After=") and "nvidia-persistenced.service" in line for line in lines)
    assert "WantedBy=multi-user.target" in lines


@pytest.mark.parametrize("data", [time_sliced(), stage_data("dev"), stage_data("prod")], ids=str)
def test_groups_without_mig_get_no_user_data(data: dict[str, Any]) -> None:
    for group in stage_config(data).cluster.gpu_node_groups:
        assert mig_layout_name(group) is None
        assert synth_user_data(group) is None


@pytest.mark.parametrize("instance", sorted({case[0] for case in CASES}))
def test_every_gpu_group_gets_the_nvidia_ami(instance: str) -> None:
    """p5 synthesises (aws-cdk-lib's own AMI check would refuse it) and gets CloudFormation's spelling
    of the NVIDIA AL2023 AMI type, the one the cfn-lint schema accepts."""
    profile = next(case[1] for case in CASES if case[0] == instance)
    template = synth(group_of(mig(profile=profile, share=profile, instance=instance)))
    (nodegroup,) = template.find_resources("AWS::EKS::Nodegroup").values()
    assert nodegroup["Properties"]["AmiType"] == "AL2023_x86_64_NVIDIA"
    assert nodegroup["Properties"]["InstanceTypes"] == [instance]
