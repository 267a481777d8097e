"""The root model of a stage's configuration and its cross-section rules."""

from __future__ import annotations

import ipaddress
import re

from pydantic import Field, ValidationInfo, field_validator, model_validator

from config.base import DnsLabel, Strict, check_retention, duplicates
from config.capacity import min_replicas_problem, model_fit_problems
from config.cluster import ClusterConfig, GpuNodeGroupConfig, NetworkConfig
from config.disaster_recovery import DisasterRecoveryConfig, check_disaster_recovery
from config.gpu_sharing import check_stage_sharing
from config.limits import (
    ALB_TARGET_GROUPS_PER_LOAD_BALANCER,
    AWS_TAG_CHARACTERS,
    AWS_TAG_KEY_MAX,
    AWS_TAG_RESERVED_PREFIX,
    AWS_TAG_VALUE_MAX,
    AWS_TAGS_PER_RESOURCE,
    DNS_NAME_MAX,
    KUBERNETES_NAME_MAX,
)
from config.operations import OffHoursConfig, SpotConfig
from config.platform import ClusterAutoscalerConfig, ImageCacheConfig, ObservabilityConfig
from config.safety import OVERRIDE_REASON_MIN, SafetyRule, describe, safety_findings
from config.serving import IngressConfig, ModelConfig, ModelVersion, WafConfig
from config.stages import PRODUCTION_STAGES
from config.subnets import carve, smallest_fitting_prefix
from contract.kubernetes import instance_name, pods_service_name

ACCOUNT = re.compile(r"^\d{12}$")
REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
AZ_CONTEXT_FILE = "cdk.context.json"
TAG_CHARACTERS = re.compile(AWS_TAG_CHARACTERS)


def az_context_key(account: str, region: str) -> str:
    """The key under which the CDK caches a region's AZs (cdk.context.json)."""
    return f"availability-zones:account={account}:region={region}"


class StageConfig(Strict):
    name: DnsLabel = Field(description="Set from the file name, e.g. config/prod.yaml -> prod.")
    account: str | None = None
    region: str | None = None
    availability_zones: list[str] = Field(min_length=2)
    network: NetworkConfig
    cluster: ClusterConfig
    log_retention_days: int = 30
    tags: dict[str, str] = Field(default_factory=dict)
    models: list[ModelConfig] = Field(default_factory=list)
    ingress: IngressConfig = Field(default_factory=IngressConfig)
    waf: WafConfig = Field(default_factory=WafConfig)
    cluster_autoscaler: ClusterAutoscalerConfig = Field(default_factory=ClusterAutoscalerConfig)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    spot: SpotConfig = Field(default_factory=SpotConfig)
    offhours: OffHoursConfig = Field(default_factory=OffHoursConfig)
    disaster_recovery: DisasterRecoveryConfig = Field(default_factory=DisasterRecoveryConfig)
    image_cache: ImageCacheConfig = Field(default_factory=ImageCacheConfig)
    safety_overrides: dict[SafetyRule, str] = Field(
        default_factory=dict,
        description="Waivers of production safety rules: rule -> reason, for reviewers (config/safety.py).",
    )

    @field_validator("safety_overrides")
    @classmethod
    def _reasons(cls, value: dict[SafetyRule, str]) -> dict[SafetyRule, str]:
        for rule, reason in value.items():
            if len(reason.strip()) < OVERRIDE_REASON_MIN:
                raise ValueError(
                    f"{rule.value}: reason {reason!r} is too short; allowed: a sentence of at least "
                    f"{OVERRIDE_REASON_MIN} characters saying why the rule does not apply to this stage"
                )
        return value

    @field_validator("tags")
    @classmethod
    def _aws_tags(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > AWS_TAGS_PER_RESOURCE:
            raise ValueError(f"{len(value)} tags; allowed: at most {AWS_TAGS_PER_RESOURCE} per resource")
        for key, tag in value.items():
            for kind, text, limit in (("key", key, AWS_TAG_KEY_MAX), ("value", tag, AWS_TAG_VALUE_MAX)):
                if text.lower().startswith(AWS_TAG_RESERVED_PREFIX):
                    raise ValueError(
                        f"tag {kind} {text!r} starts with {AWS_TAG_RESERVED_PREFIX!r}, which AWS reserves "
                        "(in any letter case); allowed: any other prefix"
                    )
                if len(text) > limit or (kind == "key" and not text):
                    raise ValueError(f"tag {kind} {text!r} has {len(text)} characters; allowed: 1 to {limit}")
                if not TAG_CHARACTERS.match(text):
                    raise ValueError(
                        f"tag {kind} {text!r} has characters AWS refuses; allowed: letters, digits, spaces "
                        "and + - = . _ : / @"
                    )
        return value

    @field_validator("account")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if value is not None and not ACCOUNT.match(value):
            raise ValueError(f"account {value!r} must be 12 digits")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not REGION.match(value):
            raise ValueError(f"region {value!r} is not an AWS region name such as eu-west-1")
        return value

    @field_validator("availability_zones")
    @classmethod
    def _unique_azs(cls, value: list[str]) -> list[str]:
        if duplicates(value):
            raise ValueError(f"duplicate availability zones {duplicates(value)}")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return check_retention(value)

    @model_validator(mode="after")
    def _environment(self, info: ValidationInfo) -> StageConfig:
        if self.account and not self.region:
            raise ValueError(f"account {self.account} is set but region is not; set both or neither")
        if self.is_production and not self.account:
            raise ValueError(
                f"stage {self.name!r} has no account, so it would deploy wherever the credentials point; "
                "allowed: account and region set (a production stage is pinned to its account)"
            )
        if self.region:
            foreign = [az for az in self.availability_zones if not re.fullmatch(rf"{self.region}[a-z]", az)]
            if foreign:
                raise ValueError(
                    f"availability_zones {foreign} are not in region {self.region}; allowed: "
                    f"{self.region} followed by a zone letter, e.g. {self.region}a"
                )
        self._check_azs_against_context(info)
        if self.network.nat_gateways > len(self.availability_zones):
            raise ValueError(
                f"network.nat_gateways {self.network.nat_gateways} exceeds the "
                f"{len(self.availability_zones)} availability zones; allowed: 1 to "
                f"{len(self.availability_zones)}"
            )
        self._check_public_cidrs_outside_vpc()
        self._check_subnets_fit()
        self._check_certificate_location()
        return self

    def _check_azs_against_context(self, info: ValidationInfo) -> None:
        """With an account, the CDK looks the region's AZs up in cdk.context.json (or calls AWS)."""
        known: dict[str, object] | None = (info.context or {}).get("cdk_context")
        if known is None or not self.account or not self.region:
            return
        key = az_context_key(self.account, self.region)
        zones = known.get(key)
        if not isinstance(zones, list):
            raise ValueError(
                f"{AZ_CONTEXT_FILE} has no key {key!r}, so synth would call AWS to list the AZs; add it "
                f"with the output of `aws ec2 describe-availability-zones --region {self.region} "
                "--query AvailabilityZones[].ZoneName` from that account"
            )
        missing = [az for az in self.availability_zones if az not in zones]
        if missing:
            raise ValueError(
                f"availability_zones {missing} are not zones of account {self.account} in {self.region}; "
                f"allowed: {zones} ({AZ_CONTEXT_FILE} {key})"
            )

    def _check_subnets_fit(self) -> None:
        if carve(self.network.vpc_cidr, len(self.availability_zones)) is None:
            fits = smallest_fitting_prefix(len(self.availability_zones))
            raise ValueError(
                f"network.vpc_cidr {self.network.vpc_cidr} cannot hold the subnets of "
                f"{len(self.availability_zones)} availability zones (a /24 public and a /19 private subnet "
                f"each, aligned); allowed: a /{fits} or larger VPC"
            )

    def _check_certificate_location(self) -> None:
        ingress = self.ingress
        if ingress.certificate_arn is None:
            return
        if self.region and ingress.certificate_region != self.region:
            raise ValueError(
                f"ingress.certificate_arn is in {ingress.certificate_region} but the ALB is in "
                f"{self.region}; "
                f"allowed: an ACM certificate in {self.region} (an ALB uses certificates of its own region)"
            )
        if self.account and ingress.certificate_account != self.account:
            raise ValueError(
                f"ingress.certificate_arn belongs to account {ingress.certificate_account} but the stage "
                f"deploys to {self.account}; allowed: a certificate of account {self.account}"
            )

    def _check_public_cidrs_outside_vpc(self) -> None:
        vpc = ipaddress.IPv4Network(self.network.vpc_cidr)
        for cidr in self.cluster.public_access_cidrs:
            network = ipaddress.ip_network(cidr)
            if network.version == 4 and network.overlaps(vpc):
                raise ValueError(
                    f"cluster.public_access_cidrs {cidr} overlaps network.vpc_cidr "
                    f"{self.network.vpc_cidr}; the private endpoint already serves the VPC"
                )

    @model_validator(mode="after")
    def _models(self) -> StageConfig:
        repeated = duplicates([model.id for model in self.models])
        if repeated:
            raise ValueError(f"models: duplicate model ids {repeated}; each id must be unique")
        self._check_generated_names()
        served: dict[str, str] = {}
        for model in self.models:
            name = model.versions[0].served_model_name
            if name in served:
                raise ValueError(
                    f"models[{model.id}] and models[{served[name]}] both serve served_model_name {name!r}; "
                    "clients name a model by it; allowed: a distinct served_model_name per model"
                )
            served[name] = model.id
        problems: list[str] = []
        for model in self.models:
            for version in model.versions:
                problems += self._check_placement(model, version)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _check_generated_names(self) -> None:
        owners: dict[str, str] = {}
        for model in self.models:
            for version in model.versions:
                name = instance_name(model.id, version.name)
                here = f"models[{model.id}].versions[{version.name}]"
                if name in owners:
                    raise ValueError(
                        f"{here} and {owners[name]} both generate the Kubernetes name {name!r} "
                        "(<id>-<version> names the Deployment, Service and Pod Identity role); allowed: "
                        "ids and version names whose combinations differ"
                    )
                owners[name] = here
        if self.ingress.routing_mode == "model":
            self._check_pods_service_names(owners)
        if len(owners) > ALB_TARGET_GROUPS_PER_LOAD_BALANCER:
            raise ValueError(
                f"models have {len(owners)} versions in all, one ALB target group each; allowed: at most "
                f"{ALB_TARGET_GROUPS_PER_LOAD_BALANCER} target groups per ALB (a fixed quota)"
            )
        if self.ingress.domain:
            for model in self.models:
                host = f"{model.id}.{self.ingress.domain}"
                if len(host) > DNS_NAME_MAX:
                    raise ValueError(
                        f"host {host!r} has {len(host)} characters; allowed: at most {DNS_NAME_MAX} "
                        "(a DNS name): shorten the model id or ingress.domain"
                    )

    def _check_pods_service_names(self, owners: dict[str, str]) -> None:
        """`model` routing adds a headless Service per version: <id>-<version>-pods (model_gateway.py)."""
        for model in self.models:
            for version in model.versions:
                name = pods_service_name(model.id, version.name)
                instance = instance_name(model.id, version.name)
                here = f"models[{model.id}].versions[{version.name}]"
                if len(name) > KUBERNETES_NAME_MAX:
                    raise ValueError(
                        f"{here}: with ingress.routing 'model' it names the Service {name!r} "
                        f"({len(name)} characters); allowed: at most {KUBERNETES_NAME_MAX} (a DNS label), "
                        f"so <id>-<version> of at most {KUBERNETES_NAME_MAX - len(name) + len(instance)} "
                        "characters"
                    )
                if name in owners:
                    raise ValueError(
                        f"{here} generates the Service name {name!r} (ingress.routing 'model'), which "
                        f"{owners[name]} also generates; allowed: ids and version names whose names differ"
                    )

    def _check_placement(self, model: ModelConfig, version: ModelVersion) -> list[str]:
        where = f"models[{model.id}].versions[{version.name}]"
        groups: list[GpuNodeGroupConfig] = []
        for group_name in version.node_groups:
            group = self.cluster.gpu_node_group(group_name)
            if group is None:
                known = [group.name for group in self.cluster.gpu_node_groups]
                raise ValueError(
                    f"{where}.node_groups: {group_name!r} is not a GPU node group; allowed: {known}"
                )
            if version.gpus_per_replica > group.gpus_per_node:
                raise ValueError(
                    f"{where}.gpus_per_replica {version.gpus_per_replica} (tensor parallel size) "
                    f"does not fit node group {group.name!r} with {group.gpus_per_node} GPUs per "
                    "node; allowed: at most the GPUs of one node"
                )
            groups.append(group)
            problems = model_fit_problems(where, version, group)
            if problems:
                return problems
        problem = min_replicas_problem(model, version, groups)
        return [problem] if problem else []

    @model_validator(mode="after")
    def _offhours_references(self) -> StageConfig:
        offhours = self.offhours
        known_models = [model.id for model in self.models]
        for model_id in offhours.models or []:
            if model_id not in known_models:
                raise ValueError(f"offhours.models: {model_id!r} is not a model; allowed: {known_models}")
        known_groups = [group.name for group in self.cluster.gpu_node_groups]
        for group_name in offhours.node_groups or []:
            if group_name not in known_groups:
                raise ValueError(
                    f"offhours.node_groups: {group_name!r} is not a GPU node group; allowed: {known_groups}"
                )
        for model in self.models:
            if offhours.enabled and offhours.floor_replicas > model.autoscaling.max_replicas:
                raise ValueError(
                    f"offhours.floor_replicas {offhours.floor_replicas} exceeds max_replicas "
                    f"{model.autoscaling.max_replicas} of model {model.id!r}"
                )
        for group in self.cluster.gpu_node_groups:
            if offhours.enabled and offhours.floor_nodes > group.max_size:
                raise ValueError(
                    f"offhours.floor_nodes {offhours.floor_nodes} exceeds max_size "
                    f"{group.max_size} of node group {group.name!r}"
                )
        return self

    @model_validator(mode="after")
    def _safety(self) -> StageConfig:
        findings = safety_findings(self)
        if self.is_production:
            errors = [describe(rule, where) for rule, where in findings if rule not in self.safety_overrides]
            if errors:
                raise ValueError(f"stage {self.name!r} is a production stage: " + "; ".join(errors))
        return self

    @model_validator(mode="after")
    def _gpu_sharing(self) -> StageConfig:
        check_stage_sharing(self)
        return self

    @model_validator(mode="after")
    def _disaster_recovery(self) -> StageConfig:
        check_disaster_recovery(self)
        return self

    def failover(self) -> StageConfig:
        """The same stage in its replica region (docs/operations.md, "Disaster recovery")."""
        dr = self.disaster_recovery
        if dr.replica_region is None or dr.failover:
            raise ValueError(f"stage {self.name} has no disaster_recovery.replica_region to fail over to")
        data = self.model_dump(mode="json")
        data.update(region=dr.replica_region, availability_zones=list(dr.replica_availability_zones))
        data["ingress"]["certificate_arn"] = dr.replica_certificate_arn
        data["disaster_recovery"]["failover"] = True
        return StageConfig.model_validate(data)

    # Derived views the stacks and the planner share.

    @property
    def is_production(self) -> bool:
        return self.name in PRODUCTION_STAGES

    @property
    def safety_warnings(self) -> list[str]:
        """Safety findings the file does not waive (prod fails on them instead), and stale waivers."""
        findings = safety_findings(self)
        warnings = [describe(rule, where) for rule, where in findings if rule not in self.safety_overrides]
        broken = {rule for rule, _ in findings}
        stale = [rule.value for rule in self.safety_overrides if rule not in broken]
        if stale:
            warnings.append(
                f"safety_overrides {stale} waive rules this stage does not break; remove them so a "
                "waiver does not outlive its reason"
            )
        return warnings

    @property
    def offhours_models(self) -> list[ModelConfig]:
        wanted = self.offhours.models
        return [model for model in self.models if wanted is None or model.id in wanted]

    @property
    def offhours_node_groups(self) -> list[GpuNodeGroupConfig]:
        wanted = self.offhours.node_groups
        groups = self.cluster.gpu_node_groups
        return [group for group in groups if wanted is None or group.name in wanted]
