"""Network, cluster and node-group settings of a stage."""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from config.base import (
    KUBERNETES_LABEL_VALUE,
    DnsLabel,
    Strict,
    check_not_open,
    check_retention,
    duplicates,
    host_bits_message,
)
from config.catalog import ARM_FAMILY, GPU_INSTANCE_TYPES, SYSTEM_INSTANCE_TYPES, GpuInstanceType
from config.gpu_sharing import GpuSharingConfig
from config.kubernetes_releases import SUPPORTED_KUBERNETES_VERSIONS
from config.limits import KUBERNETES_LABEL_VALUE_MAX

REQUIRED_ADDONS = ("vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "aws-ebs-csi-driver")
"""EKS managed add-ons every cluster runs; each needs a pinned version in cluster.addon_versions."""
ADDON_VERSION = re.compile(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")

IAM_PRINCIPAL_ARN = re.compile(
    r"^arn:aws(-cn|-us-gov)?:iam::(?P<account>[^:]*):(?P<kind>role|user)/(?P<name>[\w+=,.@/-]+)$"
)
RESERVED_LABEL_PREFIXES = ("kubernetes.io/", "k8s.io/", "eks.amazonaws.com/", "llm-inference/")


class CapacityType(StrEnum):
    ON_DEMAND = "on-demand"
    SPOT = "spot"


class NetworkConfig(Strict):
    vpc_cidr: str = Field(description="IPv4 CIDR of the VPC, /16 to /24.")
    nat_gateways: int = Field(ge=1, description="NAT gateways: 1 for cost, one per AZ for HA.")
    flow_logs_retention_days: int = Field(default=90, description="Retention of VPC flow logs.")

    @field_validator("flow_logs_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return check_retention(value)

    @field_validator("vpc_cidr")
    @classmethod
    def _valid_cidr(cls, value: str) -> str:
        try:
            network = ipaddress.IPv4Network(value, strict=True)
        except ValueError as error:
            if "host bits set" in str(error):
                raise ValueError(
                    host_bits_message(value, ipaddress.IPv4Network(value, strict=False))
                ) from None
            raise ValueError(
                f"{value!r} is not a valid IPv4 CIDR ({error}); allowed: a network address "
                "with a prefix from /16 to /24, e.g. 10.0.0.0/16"
            ) from None
        if not 16 <= network.prefixlen <= 24:
            raise ValueError(f"prefix /{network.prefixlen} of {value!r}: allowed /16 to /24")
        if not network.is_private:
            raise ValueError(f"{value!r} is not a private range; allowed: RFC 1918 ranges")
        return value


class NodeGroupSizing(Strict):
    min_size: int = Field(ge=0)
    max_size: int = Field(ge=1)
    desired_size: int = Field(ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> NodeGroupSizing:
        if self.min_size > self.max_size:
            raise ValueError(
                f"min_size {self.min_size} is greater than max_size {self.max_size}; "
                "allowed: min_size <= max_size"
            )
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(
                f"desired_size {self.desired_size} is outside [min_size, max_size] = "
                f"[{self.min_size}, {self.max_size}]"
            )
        return self


class SystemNodeGroupConfig(NodeGroupSizing):
    """The small on-demand group for add-ons and controllers."""

    instance_types: list[str] = Field(min_length=1)
    disk_size_gib: int = Field(default=50, ge=20, le=1000)

    @field_validator("instance_types")
    @classmethod
    def _known_system_types(cls, value: list[str]) -> list[str]:
        for name in value:
            if name in SYSTEM_INSTANCE_TYPES:
                continue
            family = name.split(".", 1)[0]
            why = (
                "is an Arm (Graviton) type, but the system group runs the x86_64 AMI"
                if ARM_FAMILY.match(family)
                else "is a GPU type; GPU nodes belong in gpu_node_groups"
                if name in GPU_INSTANCE_TYPES
                else "is not in the catalogue of system instance types (config/catalog.py)"
            )
            raise ValueError(
                f"{name} {why}; allowed: <family>.<size> with family one of "
                f"{', '.join(sorted({t.split('.')[0] for t in SYSTEM_INSTANCE_TYPES}))} and size one of "
                "large, xlarge, 2xlarge, 4xlarge, 8xlarge, 12xlarge, 16xlarge"
            )
        if duplicates(value):
            raise ValueError(f"duplicate instance types {duplicates(value)}")
        return value


class GpuNodeGroupConfig(NodeGroupSizing):
    name: DnsLabel
    instance_types: list[str] = Field(min_length=1)
    capacity_type: CapacityType
    disk_size_gib: int = Field(default=200, ge=50, le=16000)
    labels: dict[str, str] = Field(default_factory=dict)
    sharing: GpuSharingConfig = Field(default_factory=GpuSharingConfig)

    @field_validator("instance_types")
    @classmethod
    def _known_gpu_types(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in GPU_INSTANCE_TYPES]
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)} is not a known GPU instance type; allowed: "
                f"{', '.join(sorted(GPU_INSTANCE_TYPES))}"
            )
        gpu_counts = {name: GPU_INSTANCE_TYPES[name].gpus for name in value}
        if len(set(gpu_counts.values())) > 1:
            listing = ", ".join(f"{name}={count}" for name, count in gpu_counts.items())
            raise ValueError(
                f"instance types have different GPU counts per node ({listing}); allowed: types "
                "with the same GPU count, so the autoscaler and the scheduler see one node shape"
            )
        if duplicates(value):
            raise ValueError(f"duplicate instance types {duplicates(value)}")
        return value

    @field_validator("labels")
    @classmethod
    def _valid_labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, label in value.items():
            if key.startswith(RESERVED_LABEL_PREFIXES):
                raise ValueError(
                    f"label {key!r} uses a reserved prefix; not allowed: {RESERVED_LABEL_PREFIXES}"
                )
            if len(label) > KUBERNETES_LABEL_VALUE_MAX or not KUBERNETES_LABEL_VALUE.match(label):
                raise ValueError(
                    f"label {key}={label!r} is not a valid Kubernetes label value "
                    f"({KUBERNETES_LABEL_VALUE_MAX} characters of letters, digits, '-', '_', '.')"
                )
        return value

    @property
    def instance(self) -> GpuInstanceType:
        """The first (preferred) instance type; all types of a group share a GPU count."""
        return GPU_INSTANCE_TYPES[self.instance_types[0]]

    @property
    def gpus_per_node(self) -> int:
        return self.instance.gpus

    @property
    def gpu_memory_gib(self) -> int:
        """The smallest per-GPU memory of the group's types (what a model must fit in)."""
        return min(GPU_INSTANCE_TYPES[name].gpu_memory_gib for name in self.instance_types)


class ClusterConfig(Strict):
    kubernetes_version: str = Field(default="1.36")
    public_access_cidrs: list[str] = Field(
        default_factory=list,
        description="Empty: private endpoint only. Otherwise public+private, open to these CIDRs.",
    )
    admin_principal_arns: list[str] = Field(default_factory=list)
    system_node_group: SystemNodeGroupConfig
    gpu_node_groups: list[GpuNodeGroupConfig] = Field(min_length=1)
    addon_versions: dict[str, str] = Field(
        description="Pinned version of every EKS managed add-on in REQUIRED_ADDONS."
    )

    @field_validator("kubernetes_version")
    @classmethod
    def _supported_version(cls, value: str) -> str:
        if value not in SUPPORTED_KUBERNETES_VERSIONS:
            raise ValueError(
                f"Kubernetes version {value!r} is not supported; allowed: "
                f"{', '.join(SUPPORTED_KUBERNETES_VERSIONS)}"
            )
        return value

    @field_validator("addon_versions")
    @classmethod
    def _pinned_addons(cls, value: dict[str, str]) -> dict[str, str]:
        missing = [name for name in REQUIRED_ADDONS if name not in value]
        if missing:
            raise ValueError(
                f"missing add-on versions {missing}; required: a pinned version for each of "
                f"{', '.join(REQUIRED_ADDONS)} (list them with `aws eks describe-addon-versions`)"
            )
        unknown = [name for name in value if name not in REQUIRED_ADDONS]
        if unknown:
            raise ValueError(f"unknown add-ons {unknown}; allowed: {', '.join(REQUIRED_ADDONS)}")
        for name, version in value.items():
            if not ADDON_VERSION.match(version):
                raise ValueError(
                    f"{name} version {version!r} is not an EKS add-on version; allowed: the form "
                    "v1.2.3-eksbuild.4"
                )
        return value

    @field_validator("public_access_cidrs")
    @classmethod
    def _valid_public_cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            check_not_open(cidr)
        return value

    @field_validator("admin_principal_arns")
    @classmethod
    def _valid_arns(cls, value: list[str]) -> list[str]:
        for arn in value:
            match = IAM_PRINCIPAL_ARN.match(arn)
            if not match:
                raise ValueError(
                    f"{arn!r} is not an IAM role or user ARN; allowed: arn:aws:iam::<account>:role/<name> "
                    "or arn:aws:iam::<account>:user/<name>"
                )
            if not re.fullmatch(r"\d{12}", match["account"]):
                raise ValueError(
                    f"{arn!r} has account {match['account']!r}; allowed: exactly 12 digits "
                    "(keep leading zeros)"
                )
        if duplicates(value):
            raise ValueError(f"duplicate principals {duplicates(value)}; each gets one access entry")
        return value

    @field_validator("gpu_node_groups")
    @classmethod
    def _unique_names(cls, value: list[GpuNodeGroupConfig]) -> list[GpuNodeGroupConfig]:
        repeated = duplicates([group.name for group in value])
        if repeated:
            raise ValueError(f"duplicate node-group names {repeated}; each name must be unique")
        return value

    @model_validator(mode="after")
    def _kube_proxy_matches_kubernetes(self) -> ClusterConfig:
        # kube-proxy must run the control plane's minor version; the other add-ons do not.
        kube_proxy = self.addon_versions["kube-proxy"]
        if not kube_proxy.startswith(f"v{self.kubernetes_version}."):
            raise ValueError(
                f"addon_versions.kube-proxy {kube_proxy!r} does not match kubernetes_version "
                f"{self.kubernetes_version}; allowed: v{self.kubernetes_version}.x-eksbuild.N"
            )
        return self

    @property
    def endpoint_is_public(self) -> bool:
        return bool(self.public_access_cidrs)

    def gpu_node_group(self, name: str) -> GpuNodeGroupConfig | None:
        return next((group for group in self.gpu_node_groups if group.name == name), None)
