"""The EKS cluster: private, CMK-encrypted secrets and node volumes, full logs, managed node groups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk.lambda_layer_kubectl_v36 import KubectlV36Layer
from constructs import Construct

from config import StageConfig
from config.cluster import GpuNodeGroupConfig
from constructs_lib.gpu_node_group import GpuNodeGroup, node_groups_revision, replacement_key
from constructs_lib.image_cache import DockerHubPullThroughCache
from constructs_lib.nag import acknowledge
from constructs_lib.node_launch_template import NodeLaunchTemplate
from constructs_lib.node_volume_key import NodeVolumeKey
from constructs_lib.retention import retention
from constructs_lib.rotating_key import RotatingRetainedKey
from contract.kubernetes import NODE_GROUP_LABEL, SYSTEM_NODE_GROUP

ALL_CONTROL_PLANE_LOGS = [
    eks.ClusterLoggingTypes.API,
    eks.ClusterLoggingTypes.AUDIT,
    eks.ClusterLoggingTypes.AUTHENTICATOR,
    eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
    eks.ClusterLoggingTypes.SCHEDULER,
]
NODE_MANAGED_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonEKS_CNI_Policy",
)


def control_plane_log_group_name(cluster_name: str) -> str:
    """The group EKS writes control-plane logs to (it creates it, unencrypted, if it is missing)."""
    return f"/aws/eks/{cluster_name}/cluster"


def cluster_name_for(stage: str) -> str:
    """The cluster's physical name.

    Fixed per stage because autoscaler discovery tags and the Lambdas' EKS tokens need the
    name as a literal at synth time.
    """
    return f"llm-inference-{stage}"


def gpu_node_groups_revision(config: StageConfig, groups: list[GpuNodeGroupConfig]) -> str:
    """The replacement digest of `groups` (see constructs_lib.gpu_node_group.node_groups_revision)."""
    return node_groups_revision(
        (
            group.name,
            replacement_key(
                group,
                cluster_name=cluster_name_for(config.name),
                availability_zones=list(config.availability_zones),
                vpc_cidr=config.network.vpc_cidr,
            ),
        )
        for group in groups
    )


@dataclass(frozen=True)
class ClusterHandle:
    """What the other stacks of a stage need of the cluster (``ClusterStack.handle``).

    ``cluster``: the cluster as ``eks.ICluster`` (kubectl provider, ARN, endpoint); ``name``: its
    literal name, for what must know it at synth time (Pod Identity associations, autoscaler
    discovery tags, the Lambdas' tokens); ``security_group_id``: the cluster security group;
    ``gpu_node_groups``: the GPU node groups by config name.
    """

    cluster: eks.ICluster
    name: str
    security_group_id: str
    gpu_node_groups: Mapping[str, eks.Nodegroup]


class ClusterStack(Stack):
    """Exposes ``handle`` (a ``ClusterHandle``, what other stacks take), ``cluster``, ``cluster_name``,
    ``secrets_key``, ``node_volume_key``, ``node_role``, ``control_plane_logs`` and ``gpu_node_groups``.

    :param logs_key: the stage's CloudWatch Logs key (control-plane and kubectl provider logs).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: StageConfig,
        vpc: ec2.IVpc,
        logs_key: kms.IKey,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.cluster_name = cluster_name_for(config.name)
        private_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)

        self.secrets_key = RotatingRetainedKey(
            self,
            "SecretsKey",
            description=f"EKS secrets envelope encryption for {self.cluster_name}",
        )
        endpoint_access = (
            eks.EndpointAccess.PUBLIC_AND_PRIVATE.only_from(*config.cluster.public_access_cidrs)
            if config.cluster.endpoint_is_public
            else eks.EndpointAccess.PRIVATE
        )
        self.cluster = eks.Cluster(
            self,
            "Cluster",
            cluster_name=self.cluster_name,
            version=eks.KubernetesVersion.of(config.cluster.kubernetes_version),
            vpc=vpc,
            vpc_subnets=[private_subnets],
            endpoint_access=endpoint_access,
            secrets_encryption_key=self.secrets_key,
            cluster_logging=ALL_CONTROL_PLANE_LOGS,
            default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
            default_capacity=0,
            # Nobody is cluster admin by being the deployer: admins come from config as access
            # entries, and the kubectl provider gets its own entry from the construct.
            bootstrap_cluster_creator_admin_permissions=False,
            kubectl_provider_options=eks.KubectlProviderOptions(
                kubectl_layer=KubectlV36Layer(self, "KubectlLayer"),
                private_subnets=vpc.private_subnets,
            ),
        )
        self._encrypt_logs(config, logs_key)
        # jsii's generated ICluster protocol lists a member the concrete class lacks in stubs.
        cluster = cast(eks.ICluster, self.cluster)
        for index, principal_arn in enumerate(config.cluster.admin_principal_arns):
            self.cluster.grant_access(
                f"Admin{index}",
                principal_arn,
                [
                    eks.AccessPolicy.from_access_policy_name(
                        "AmazonEKSClusterAdminPolicy", access_scope_type=eks.AccessScopeType.CLUSTER
                    )
                ],
            )

        self.node_role = iam.Role(
            self,
            "NodeRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(name) for name in NODE_MANAGED_POLICIES
            ],
        )
        # One key for every node group's root volumes (system and GPU).
        self.node_volume_key = NodeVolumeKey(
            self, "NodeVolumeKey", description=f"EBS root volumes of the nodes of {self.cluster_name}"
        ).key
        system = config.cluster.system_node_group
        system_template = NodeLaunchTemplate(
            self, "SystemTemplate", disk_size_gib=system.disk_size_gib, volume_key=self.node_volume_key
        )
        self.system_node_group = eks.Nodegroup(
            self,
            "SystemNodes",
            cluster=cluster,
            ami_type=eks.NodegroupAmiType.AL2023_X86_64_STANDARD,
            capacity_type=eks.CapacityType.ON_DEMAND,
            instance_types=[ec2.InstanceType(name) for name in system.instance_types],
            min_size=system.min_size,
            max_size=system.max_size,
            desired_size=system.desired_size,
            launch_template_spec=eks.LaunchTemplateSpec(
                id=system_template.launch_template.launch_template_id or "",
                version=system_template.launch_template.latest_version_number,
            ),
            labels={NODE_GROUP_LABEL: SYSTEM_NODE_GROUP},
            node_role=self.node_role,
            subnets=private_subnets,
            enable_node_auto_repair=True,
        )
        self.gpu_node_groups = {
            group.name: GpuNodeGroup(
                self,
                f"Gpu-{group.name}",
                cluster=cluster,
                cluster_name=self.cluster_name,
                group=group,
                node_role=self.node_role,
                subnets=private_subnets,
                volume_key=self.node_volume_key,
            ).nodegroup
            for group in config.cluster.gpu_node_groups
        }
        self.docker_hub_cache: DockerHubPullThroughCache | None = None
        if config.image_cache.docker_hub_secret_name:
            self.docker_hub_cache = DockerHubPullThroughCache(
                self,
                "DockerHubCache",
                stage=config.name,
                operator_secret_name=config.image_cache.docker_hub_secret_name,
                pullers=[self.node_role],
            )
        self.handle = ClusterHandle(
            cluster=cluster,
            name=self.cluster_name,
            security_group_id=self.cluster.cluster_security_group_id,
            gpu_node_groups=self.gpu_node_groups,
        )
        self._acknowledge_findings()

    def _encrypt_logs(self, config: StageConfig, logs_key: kms.IKey) -> None:
        """Control-plane and kubectl provider logs under the stage's logs key, with its retention."""
        # Created before the cluster, so EKS writes into this group instead of making its own.
        self.control_plane_logs = logs.LogGroup(
            self,
            "ControlPlaneLogs",
            log_group_name=control_plane_log_group_name(self.cluster_name),
            encryption_key=logs_key,
            retention=retention(config.log_retention_days),
            # A fixed name: kept on update or delete, removed if the first create rolls back.
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        self.cluster.node.add_dependency(self.control_plane_logs)
        # The kubectl provider makes its Lambdas' log groups itself; only overrides reach them.
        for child in self.cluster.node.find_all():
            if isinstance(child, logs.CfnLogGroup):
                child.kms_key_id = logs_key.key_arn
                child.retention_in_days = config.log_retention_days

    def _acknowledge_findings(self) -> None:
        """Every cdk-nag finding this stack accepts, with its reason."""
        acknowledge(
            self.node_role,
            *(
                f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{policy}]"
                for policy in NODE_MANAGED_POLICIES
            ),
            reason="AWS-managed policies EKS documents for managed node groups; they track new "
            "service requirements that a copied policy would miss.",
        )
        acknowledge(
            self.cluster,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSClusterPolicy]",
            reason="The cluster role needs exactly the AWS-managed policy EKS documents for it.",
        )
        # The kubectl provider is aws-cdk-lib's own code: its roles, runtime and invoke wildcard
        # come with the construct and cannot be narrowed from here.
        acknowledge(
            self.cluster,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaVPCAccessExecutionRole]",
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
            "AmazonEC2ContainerRegistryReadOnly]",
            'AwsSolutions-IAM4[Policy::{"Fn::If":["ClusterKubectlProviderHandlerHasEcrPublic69E09706",'
            '{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":iam::aws:policy/'
            'AmazonElasticContainerRegistryPublicReadOnly"]]},{"Ref":"AWS::NoValue"}]}]',
            "AwsSolutions-L1",
            "AwsSolutions-IAM5[Resource::<ClusterKubectlProviderHandler2E05C68A.Arn>:*]",
            reason="Roles, runtime and invoke permission of the kubectl provider that aws_eks_v2 "
            "creates; it runs in the private subnets and only this stack's custom resources call it.",
        )
