"""Model serving of a stage: weights bucket, WAF, ALB controller, and the vLLM and ingress charts."""

from __future__ import annotations

from typing import Any

import cdk8s
from aws_cdk import RemovalPolicy, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.region_info import RegionInfo
from constructs import Construct

from config import StageConfig
from config.disaster_recovery import replica_bucket_name, replica_key_alias
from config.serving import STAGE_BUCKET_SCHEME, ModelVersion
from constructs_lib.access_logs_bucket import access_logs_bucket
from constructs_lib.addons.alb_controller import AlbControllerAddon
from constructs_lib.addons.external_secrets import ExternalSecrets
from constructs_lib.edge_web_acl import EdgeWebAcl
from constructs_lib.model_api_key import ModelApiKey
from constructs_lib.model_bucket_replication import ModelBucketReplication
from constructs_lib.model_reader_role import ModelReaderRole
from constructs_lib.nag import acknowledge
from constructs_lib.rotating_key import RotatingRetainedKey
from contract.kubernetes import MODELS_NAMESPACE, instance_name
from contract.serving import STAGE_VALUES_CONFIG_MAP, StageValues, stage_values_data
from k8s_charts.images import docker_hub_mirror
from k8s_charts.stage_charts import StageCharts, build_stage_charts
from stacks.cluster_stack import ClusterHandle
from stacks.serving_guardrails import add_model_guardrails

# A generous ceiling on the request body one prompt can need: a token is rarely more than a few
# characters, a character at most 6 bytes once JSON-escaped (\uXXXX); plus room for the rest of
# the request (sampling parameters, tools, chat roles).
BODY_BYTES_PER_TOKEN = 32
BODY_OVERHEAD_BYTES = 64 * 1024
ALB_LOG_PREFIX = "alb"


def max_request_body_bytes(config: StageConfig) -> int:
    """The largest request body the WAF lets through: sized by the longest context of the stage."""
    longest = max((v.engine.max_model_len for m in config.models for v in m.versions), default=0)
    return longest * BODY_BYTES_PER_TOKEN + BODY_OVERHEAD_BYTES


def model_prefixes(version: ModelVersion) -> list[str]:
    """Prefixes of the stage bucket a version reads: its weights and, if any, its draft model's."""
    prefixes = [version.stage_bucket_prefix] if version.stage_bucket_prefix else []
    speculative = version.engine.speculative
    if speculative and speculative.draft_model and speculative.draft_model.startswith(STAGE_BUCKET_SCHEME):
        prefixes.append(speculative.draft_model.removeprefix(STAGE_BUCKET_SCHEME).strip("/") + "/")
    return prefixes


class ServingStack(Stack):
    """Exposes ``model_bucket``, ``model_bucket_key``, ``access_logs_bucket``, ``web_acl``,
    ``reader_roles`` (by <model-id>-<version>), ``alb_controller``, ``api_key`` and
    ``external_secrets`` (both None when the stage's ingress has no authentication), ``charts``,
    ``manifests`` (by chart name), ``guardrails`` (by model id) and ``filter_roles`` (by
    <model-id>-<version>).

    Props:
        config: the stage (models, ingress, waf, log retention).
        cluster: the EKS cluster: its kubectl provider applies the charts and the controller, its
            literal name goes into Pod Identity associations and the controller's values.
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
        cluster: ClusterHandle,
        vpc: ec2.IVpc,
        logs_key: kms.IKey,
        prometheus_query_url: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.access_logs_bucket = self._access_logs_bucket(config.name)
        self.model_bucket_key, self.model_bucket = self._model_bucket(config)
        self.web_acl = EdgeWebAcl(
            self,
            "EdgeWebAcl",
            name_prefix=f"llm-inference-{config.name}",
            rate_limit_per_5_minutes=config.waf.rate_limit_per_5_minutes,
            allow_cidrs=list(config.waf.allow_cidrs),
            logs_key=logs_key,
            log_retention_days=config.log_retention_days,
            max_body_bytes=max_request_body_bytes(config),
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
                cluster_name=cluster.name,
                namespace=MODELS_NAMESPACE,
                service_account=instance_name(model.id, version.name),
                bucket=self.model_bucket,
                bucket_key=self.model_bucket_key,
                prefixes=model_prefixes(version),
                bucket_key_alias=self._bucket_key_alias,
            )
            for model in config.models
            for version in model.versions
            if model_prefixes(version)
        }

        self.alb_controller = AlbControllerAddon(
            self,
            "AlbController",
            cluster=cluster.cluster,
            cluster_name=cluster.name,
            vpc=vpc,
            web_acl_arn=self.web_acl.attr_arn,
        )
        self.api_key: ModelApiKey | None = None
        self.external_secrets: ExternalSecrets | None = None
        if config.ingress.requires_api_key:
            self.api_key = ModelApiKey(
                self, "ApiKey", description=f"API key of the model endpoints of stage {config.name}"
            )
            self.external_secrets = ExternalSecrets(
                self,
                "ExternalSecrets",
                cluster=cluster.cluster,
                cluster_name=cluster.name,
                secrets=[self.api_key.secret],
                secrets_key=self.api_key.key,
            )
        values = StageValues(
            model_bucket_name=self.model_bucket.bucket_name,
            prometheus_query_url=prometheus_query_url,
            access_logs_bucket_name=self.access_logs_bucket.bucket_name,
            web_acl_arn=self.web_acl.attr_arn,
            region=self.region,
            # An ARN is not a secret; "" when the stage needs no key (no chart then reads it).
            api_key_secret_arn=self.api_key.secret.secret_arn if self.api_key else "",
            docker_hub_mirror=(
                docker_hub_mirror(account=self.account, region=self.region, url_suffix=self.url_suffix)
                if config.image_cache.docker_hub_secret_name
                else ""
            ),
        )
        self.charts: StageCharts = build_stage_charts(cdk8s.App(), config=config, values=values)
        self.manifests = self._apply(cluster, values)
        # Input/output filtering (docs/serving.md#input-and-output-filtering).
        self.guardrails, self.filter_roles = add_model_guardrails(
            self,
            config=config,
            cluster=cluster,
            reader_roles=self.reader_roles,
            namespace=self.manifests.get("models-namespace"),
        )
        self._acknowledge_findings()

    def _model_bucket(self, config: StageConfig) -> tuple[kms.IKey, s3.IBucket]:
        """The weights bucket and its key. A failover stage serves from the replica the primary filled
        (ModelReplicaStack), found by name and alias; a primary with a replica region replicates to it."""
        dr = config.disaster_recovery
        self._bucket_key_alias: str | None = None
        self.replication: ModelBucketReplication | None = None
        if dr.failover:
            self._bucket_key_alias = replica_key_alias(config.name)
            name = replica_bucket_name(stage=config.name, account=self.account, region=self.region)
            return (
                kms.Alias.from_alias_name(self, "ModelBucketKey", self._bucket_key_alias),
                s3.Bucket.from_bucket_name(self, "ModelBucket", name),
            )
        key = RotatingRetainedKey(
            self,
            "ModelBucketKey",
            description=f"Model weights of stage {config.name}",
        )
        bucket = s3.Bucket(
            self,
            "ModelBucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            versioned=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="s3/models/",
            removal_policy=RemovalPolicy.RETAIN,
        )
        if dr.replica_region is not None:
            self.replication = ModelBucketReplication(
                self,
                "ModelBucketReplication",
                bucket=bucket,
                bucket_key=key,
                stage=config.name,
                replica_region=dr.replica_region,
            )
        return key, bucket

    def _access_logs_bucket(self, stage: str) -> s3.Bucket:
        """S3 server access logs and ALB access logs. Both services deliver only to SSE-S3 buckets."""
        bucket = access_logs_bucket(self)
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

    def _apply(self, cluster: ClusterHandle, values: StageValues) -> dict[str, eks.KubernetesManifest]:
        """One manifest resource per chart; every chart waits for the namespace and the controller
        (its webhooks mutate Services and pods in `models`)."""
        target = cluster.cluster
        manifests: dict[str, eks.KubernetesManifest] = {}
        namespace: eks.KubernetesManifest | None = None
        for name, chart in self.charts.all().items():
            manifest = eks.KubernetesManifest(self, f"Chart-{name}", cluster=target, manifest=chart.to_json())
            manifest.node.add_dependency(self.alb_controller)
            if self.external_secrets is not None:
                # SecretStore and ExternalSecret need the operator's CRDs and webhook.
                manifest.node.add_dependency(self.external_secrets.chart)
            if namespace is None:
                namespace = manifest
            else:
                manifest.node.add_dependency(namespace)
            manifests[name] = manifest
        if "model-gateway" in manifests and "api-key" in manifests:
            # The gateway's SecurityPolicy reads the Secret the api-key chart's ExternalSecret makes
            # (Envoy Gateway answers 500, failing closed, while the Secret is missing).
            manifests["model-gateway"].node.add_dependency(manifests["api-key"])
        # For GitOps: Flux post-build substitution reads the export's ${VARS} from this ConfigMap.
        stage_values = eks.KubernetesManifest(
            self,
            "StageValues",
            cluster=target,
            manifest=[
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": STAGE_VALUES_CONFIG_MAP, "namespace": MODELS_NAMESPACE},
                    "data": stage_values_data(values),
                }
            ],
        )
        if namespace is not None:
            stage_values.node.add_dependency(namespace)
        return manifests

    def _acknowledge_findings(self) -> None:
        """Every cdk-nag finding this stack accepts, with its reason."""
        if self._bucket_key_alias is None:
            bucket_arn = f"<{self.resolve(self.get_logical_id(self.model_bucket.node.default_child))}.Arn>"  # type: ignore[arg-type]
        else:
            # cdk-nag prints an unresolved partition as <AWS::Partition>; finding ids must be plain strings.
            partition = "<AWS::Partition>" if Token.is_unresolved(self.partition) else self.partition
            bucket_arn = f"arn:{partition}:s3:::{self.model_bucket.bucket_name}"
            acknowledge(
                self.access_logs_bucket,
                "AwsSolutions-S1",
                reason="The access-log target itself (ALB logs here); in the primary the model bucket's "
                "logging marks it as such, here that bucket is the imported replica.",
            )
            for reader in self.reader_roles.values():
                acknowledge(
                    reader.role,
                    f"AwsSolutions-IAM5[Resource::arn:{partition}:kms:{self.region}:{self.account}:key/*]",
                    reason="The replica key is created by the primary's deploy and found by its alias: "
                    "decrypt only on the key carrying that alias (kms:ResourceAliases), only through S3.",
                )
        for name, reader in self.reader_roles.items():
            prefixes = model_prefixes(self._versions[name])
            acknowledge(
                reader.role,
                *(f"AwsSolutions-IAM5[Resource::{bucket_arn}/{prefix}*]" for prefix in prefixes),
                reason="s3:GetObject on the objects under this model's own prefix only; object "
                "keys (shards, tokenizer files) are not known at synth time.",
            )
