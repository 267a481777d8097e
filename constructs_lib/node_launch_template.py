"""Launch template for managed node groups: IMDSv2 only, hop limit 1, gp3 root volume encrypted with a CMK."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from constructs import Construct

ROOT_DEVICE = "/dev/xvda"  # the root device of the AL2023 EKS-optimised AMIs


class NodeLaunchTemplate(Construct):
    """Exposes ``launch_template``.

    Hop limit 1 keeps pods (one network hop further away) from reaching the node's instance
    metadata and its role; pods get AWS credentials through Pod Identity instead.

    :param disk_size_gib: size of the root volume.
    :param volume_key: customer-managed key that encrypts the root volume; its policy must let the
        EC2 Auto Scaling service-linked role use it (see ``NodeVolumeKey``).
    :param user_data: MIME multi-part user data that EKS merges with its own bootstrap part.
        @default - none (the template leaves bootstrapping to EKS alone)
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        disk_size_gib: int,
        volume_key: kms.IKey,
        user_data: ec2.UserData | None = None,
    ) -> None:
        super().__init__(scope, id_)
        self.launch_template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            require_imdsv2=True,
            http_tokens=ec2.LaunchTemplateHttpTokens.REQUIRED,
            http_put_response_hop_limit=1,
            http_endpoint=True,
            user_data=user_data,
            block_devices=[
                ec2.BlockDevice(
                    device_name=ROOT_DEVICE,
                    volume=ec2.BlockDeviceVolume.ebs(
                        disk_size_gib,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        encrypted=True,
                        kms_key=volume_key,
                        delete_on_termination=True,
                    ),
                )
            ],
        )
