"""Model serving of a stage: weights bucket, WAF, ALB controller, and the vLLM and ingress charts."""

from __future__ import annotations

from typing import Any, cast

import cdk8s
from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.region_info import RegionInfo
from constructs import Construct

from config import StageConfig
from config.serving import STAGE_BUCKET_SCHEME, ModelVersion
from constructs_lib.alb_controller import AlbControllerAddon
from constructs_lib.edge_web_acl import EdgeWebAcl
from constructs_lib.model_reader_role import ModelReaderRole
from constructs_lib.nag import acknowledge
from k8s_charts.images import docker_hub_mirror
from k8s_charts.names import MODELS_NAMESPACE, StageValues, instance_name
from k8s_charts.stage_charts import StageCharts, build_stage_charts

STAGE_VALUES_CONFIGMAP = "serving-stage-values"
ALB_LOG_PREFIX = "alb"


def model_prefixes(version: ModelVersion) -> list[str]:
    """Prefixes of the stage bucket a version reads: its weights and, if any, its draft model's."""
    prefixes = [version.stage_bucket_prefix] if version.stage_bucket_prefix else []
    speculative = version.engine.speculative
    if speculative and speculative.draft_model and speculative.draft_model.startswith(STAGE_BUCKET_SCHEME):
        prefixes.append(speculative.draft_model.removeprefix(STAGE_BUCKET_SCHEME).strip("/") + "/")
    return prefixes


class ServingStack(Stack):
    """Exposes ``model_bucket``, ``model_bucket_key``, ``access_logs_bucket``, ``web_acl``,
    ``reader_roles`` (by <model-id>-<version>), ``alb_controller``, ``charts`` and ``manifests``
    (by chart name).

    Props:
        config: the stage (models, ingress, waf, log retention).
        cluster: the EKS cluster whose kubectl provider applies the charts and the controller.
        cluster_name: its literal name (Pod Identity associations, controller values).
        vpc: the cluster's VPC (controller values).
        logs_key: the stage's CloudWatch Logs key (WAF log group).
        prometheus_query_url: the AMP query URL KEDA's triggers read.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: StageConfig,
        cluster: eks.Cluster,
        cluster_name: str,
        vpc: ec2.IVpc,
        logs_key: kms.IKey,
        prometheus_query_url: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.access_logs_bucket = self._access_logs_bucket(config.name)
        self.model_bucket_key = kms.Key(
            self,
            "ModelBucketKey",
            description=f"Model weights of stage {config.name}",
            enable_key_rotation=True,
            pending_window=Duration.days(30),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.model_bucket = s3.Bucket(
            self,
            "ModelBucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.model_bucket_key,
            bucket_key_enabled=True,
            versioned=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="s3/models/",
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.web_acl = EdgeWebAcl(
            self,
            "EdgeWebAcl",
            name_prefix=f"llm-inference-{config.name}",
            rate_limit_per_5_minutes=config.waf.rate_limit_per_5_minutes,
            allow_cidrs=list(config.waf.allow_cidrs),
            logs_key=logs_key,
            log_retention_days=config.log_retention_days,
        ).web_acl

        self._versions = {
            instance_name(model.id, version.name): version
            for model in config.models
            for version in model.versions
        }
        self.reader_roles = {
            instance_name(model.id, version.name): ModelReaderRole(
                self,
                f"Reader-{instance_name(model.id, version.name)}",
                cluster_name=cluster_name,
                namespace=MODELS_NAMESPACE,
                service_account=instance_name(model.id, version.name),
                bucket=self.model_bucket,
                bucket_key=self.model_bucket_key,
                prefixes=model_prefixes(version),
            )
            for model in config.models
            for version in model.versions
            if model_prefixes(version)
        }

        self.alb_controller = AlbControllerAddon(
            self, "AlbController", cluster=cast(eks.ICluster, cluster), cluster_name=cluster_name, vpc=vpc
        )
        values = StageValues(
            model_bucket_name=self.model_bucket.bucket_name,
            prometheus_query_url=prometheus_query_url,
            access_logs_bucket_name=self.access_logs_bucket.bucket_name,
            web_acl_arn=self.web_acl.attr_arn,
            region=self.region,
            docker_hub_mirror=(
                docker_hub_mirror(account=self.account, region=self.region, url_suffix=self.url_suffix)
                if config.image_cache.docker_hub_secret_name
                else ""
            ),
        )
        self.charts: StageCharts = build_stage_charts(cdk8s.App(), config=config, values=values)
        self.manifests = self._apply(cluster, values)
        self._acknowledge_findings()

    def _access_logs_bucket(self, stage: str) -> s3.Bucket:
        """S3 server access logs and ALB access logs. Both services deliver only to SSE-S3 buckets."""
        bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            versioned=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        # Regions older than August 2022 deliver ALB logs as the regional ELB account; newer ones
        # as the log-delivery service principal.
        elb_account = RegionInfo.get(self.region).elbv2_account if self.region else None
        principal: iam.IPrincipal = (
            iam.AccountPrincipal(elb_account)
            if elb_account
            else iam.ServicePrincipal("logdelivery.elasticloadbalancing.amazonaws.com")
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlbAccessLogDelivery",
                principals=[principal],
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{ALB_LOG_PREFIX}/{stage}/AWSLogs/{self.account}/*")],
            )
        )
        return bucket

    def _apply(self, cluster: eks.Cluster, values: StageValues) -> dict[str, eks.KubernetesManifest]:
        """One manifest resource per chart; every chart waits for the namespace and the controller
        (its webhooks mutate Services and pods in `models`)."""
        # jsii's generated ICluster protocol lists a member the concrete class lacks in stubs.
        target = cast(eks.ICluster, cluster)
        manifests: dict[str, eks.KubernetesManifest] = {}
        namespace: eks.KubernetesManifest | None = None
        for name, chart in self.charts.all().items():
            manifest = eks.KubernetesManifest(self, f"Chart-{name}", cluster=target, manifest=chart.to_json())
            manifest.node.add_dependency(self.alb_controller)
            if namespace is None:
                namespace = manifest
            else:
                manifest.node.add_dependency(namespace)
            manifests[name] = manifest
        # For GitOps: Flux post-build substitution reads the export's ${VARS} from this ConfigMap.
        stage_values = eks.KubernetesManifest(
            self,
            "StageValues",
            cluster=target,
            manifest=[
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": STAGE_VALUES_CONFIGMAP, "namespace": MODELS_NAMESPACE},
                    "data": {
                        "MODEL_BUCKET_NAME": values.model_bucket_name,
                        "PROMETHEUS_QUERY_URL": values.prometheus_query_url,
                        "ACCESS_LOGS_BUCKET_NAME": values.access_logs_bucket_name,
                        "WEB_ACL_ARN": values.web_acl_arn,
                        "AWS_REGION": values.region,
                        "DOCKER_HUB_MIRROR": values.docker_hub_mirror,
                    },
                }
            ],
        )
        if namespace is not None:
            stage_values.node.add_dependency(namespace)
        return manifests

    def _acknowledge_findings(self) -> None:
        """Every cdk-nag finding this stack accepts, with its reason."""
        bucket = self.resolve(self.get_logical_id(self.model_bucket.node.default_child))  # type: ignore[arg-type]
        for name, reader in self.reader_roles.items():
            prefixes = model_prefixes(self._versions[name])
            acknowledge(
                reader.role,
                *(f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/{prefix}*]" for prefix in prefixes),
                reason="s3:GetObject on the objects under this model's own prefix only; object "
                "keys (shards, tokenizer files) are not known at synth time.",
            )
