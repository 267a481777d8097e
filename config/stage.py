"""The root model of a stage's configuration and its cross-section rules."""

from __future__ import annotations

import ipaddress
import re

from pydantic import Field, field_validator, model_validator

from config.base import DnsLabel, Strict, check_retention, duplicates
from config.cluster import ClusterConfig, GpuNodeGroupConfig, NetworkConfig
from config.operations import OffHoursConfig, SpotConfig
from config.platform import ClusterAutoscalerConfig, ImageCacheConfig, ObservabilityConfig
from config.serving import IngressConfig, ModelConfig, ModelVersion, WafConfig

ACCOUNT = re.compile(r"^\d{12}$")
REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
# vLLM needs room beyond the weights for activations and at least some KV cache.
WEIGHTS_HEADROOM = 1.2


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
    image_cache: ImageCacheConfig = Field(default_factory=ImageCacheConfig)

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
    def _environment(self) -> StageConfig:
        if self.account and not self.region:
            raise ValueError(f"account {self.account} is set but region is not; set both or neither")
        if self.region:
            foreign = [az for az in self.availability_zones if not az.startswith(self.region)]
            if foreign:
                raise ValueError(f"availability_zones {foreign} are not in region {self.region}")
        if self.network.nat_gateways > len(self.availability_zones):
            raise ValueError(
                f"network.nat_gateways {self.network.nat_gateways} exceeds the "
                f"{len(self.availability_zones)} availability zones; allowed: 1 to "
                f"{len(self.availability_zones)}"
            )
        self._check_public_cidrs_outside_vpc()
        return self

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
        for model in self.models:
            for version in model.versions:
                self._check_placement(model, version)
        return self

    def _check_placement(self, model: ModelConfig, version: ModelVersion) -> None:
        where = f"models[{model.id}].versions[{version.name}]"
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
            self._check_memory(where, version, group)

    @staticmethod
    def _check_memory(where: str, version: ModelVersion, group: GpuNodeGroupConfig) -> None:
        if version.weights_gib is None:
            return
        usable = version.gpus_per_replica * group.gpu_memory_gib * version.engine.gpu_memory_utilization
        needed = version.weights_gib * WEIGHTS_HEADROOM
        if needed > usable:
            raise ValueError(
                f"{where}.weights_gib {version.weights_gib} needs about {needed:.1f} GiB with "
                f"headroom but {version.gpus_per_replica} x {group.instance.gpu_model} "
                f"({group.gpu_memory_gib} GiB) at gpu_memory_utilization "
                f"{version.engine.gpu_memory_utilization} gives {usable:.1f} GiB on node group "
                f"{group.name!r}; use more GPUs per replica, quantization or a larger GPU"
            )

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

    # Derived views the stacks and the planner share.

    @property
    def is_environment_agnostic(self) -> bool:
        return self.account is None

    @property
    def offhours_models(self) -> list[ModelConfig]:
        wanted = self.offhours.models
        return [model for model in self.models if wanted is None or model.id in wanted]

    @property
    def offhours_node_groups(self) -> list[GpuNodeGroupConfig]:
        wanted = self.offhours.node_groups
        groups = self.cluster.gpu_node_groups
        return [group for group in groups if wanted is None or group.name in wanted]
