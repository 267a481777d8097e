"""The model registry, ingress and edge-protection settings of a stage."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from config.base import DnsLabel, Strict, check_not_open, duplicates
from config.filtering import FilteringConfig
from config.gpu_sharing import GpuShare
from config.limits import (
    ALB_TARGET_GROUPS_PER_ACTION,
    DNS_NAME_MAX,
    KUBERNETES_NAME_MAX,
    KUBERNETES_QUALIFIED_NAME_MAX,
)
from config.slo import ModelSlo
from config.vllm_support import check_engine, check_image_tag
from contract.kubernetes import instance_name

HF_MODEL_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[\w.\-/=]*)?$")
STAGE_BUCKET_URI = re.compile(r"^bucket://[\w.\-][\w.\-/=]*$")
STAGE_BUCKET_SCHEME = "bucket://"
IMAGE_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
MAX_INSTANCE_NAME = KUBERNETES_NAME_MAX
TENSOR_PARALLEL_SIZES = (1, 2, 4, 8)
"""GPUs per replica vLLM can shard a model over on one node: powers of two (attention heads divide)."""
ALB_ACTION_KEYS = ("actions", "conditions")
"""Annotation keys generated per model id: alb.ingress.kubernetes.io/<kind>.<model id>."""
CERTIFICATE_ARN = re.compile(
    r"^arn:aws(-cn|-us-gov)?:acm:(?P<region>[a-z]{2}(-gov)?-[a-z]+-\d):(?P<account>\d{12}):"
    r"certificate/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# A served name is what clients put in `model`; in `model` routing the gateway matches it as the HTTP
# header x-ai-eg-model (surrounding whitespace is not part of a header value, control characters are
# refused), and the smoke check passes the names space-separated.
SERVED_MODEL_NAME = re.compile(r"[^\s\x00-\x1f\x7f]+")
UNKNOWN_MODEL_PROBE = "smoke check: no such model"
"""A `model` no stage can serve (it has spaces, which SERVED_MODEL_NAME refuses): the smoke check sends it
to prove the gateway's unknown-model answer. No `"` or `\\`: the gateway echoes it unescaped in JSON."""


def check_model_source(value: str) -> str:
    if not (STAGE_BUCKET_URI.match(value) or S3_URI.match(value) or HF_MODEL_ID.match(value)):
        raise ValueError(
            f"{value!r} is not a model source; allowed: bucket://<prefix> (this stage's model "
            "bucket), s3://<bucket>/<prefix>, or a Hugging Face id such as "
            "meta-llama/Llama-3.1-8B-Instruct"
        )
    return value


class Quantization(StrEnum):
    NONE = "none"
    AWQ = "awq"
    GPTQ = "gptq"
    FP8 = "fp8"


class Dtype(StrEnum):
    AUTO = "auto"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"


class SpeculativeMethod(StrEnum):
    NGRAM = "ngram"
    DRAFT_MODEL = "draft_model"


class SpeculativeDecoding(Strict):
    method: SpeculativeMethod
    num_speculative_tokens: int = Field(ge=1, le=16)
    draft_model: str | None = Field(default=None, description="Required for draft_model.")
    prompt_lookup_max: int = Field(default=4, ge=1, le=16, description="n-gram window.")

    @field_validator("draft_model")
    @classmethod
    def _valid_draft_source(cls, value: str | None) -> str | None:
        return None if value is None else check_model_source(value)

    @model_validator(mode="after")
    def _draft_model_when_needed(self) -> SpeculativeDecoding:
        if self.method is SpeculativeMethod.DRAFT_MODEL and not self.draft_model:
            raise ValueError("speculative.draft_model is required when method is draft_model")
        if self.method is SpeculativeMethod.NGRAM and self.draft_model:
            raise ValueError("speculative.draft_model is only allowed with method draft_model")
        return self


class EngineOptions(Strict):
    """vLLM engine arguments chosen per model version."""

    quantization: Quantization = Quantization.NONE
    dtype: Dtype = Dtype.AUTO
    max_model_len: int = Field(gt=0, description="Context length in tokens.")
    max_num_seqs: int = Field(default=128, gt=0, le=4096)
    gpu_memory_utilization: float = Field(default=0.90, gt=0.1, le=0.98)
    enable_prefix_caching: bool = True
    speculative: SpeculativeDecoding | None = None
    extra_args: list[str] = Field(
        default_factory=list, description="More vLLM flags, one argument per item; not generated ones."
    )


class ScalingPolicy(Strict):
    type: Literal["Pods", "Percent"]
    value: int = Field(gt=0)
    period_seconds: int = Field(gt=0, le=1800)


class ScalingRules(Strict):
    """One direction of an autoscaling/v2 HPA behaviour."""

    stabilization_window_seconds: int = Field(ge=0, le=3600)
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    policies: list[ScalingPolicy] = Field(min_length=1)


class ModelAutoscaling(Strict):
    min_replicas: int = Field(ge=1, description="Floor while serving (off-hours go below).")
    max_replicas: int = Field(ge=1)
    target_queue_depth: float = Field(
        gt=0, description="vllm:num_requests_waiting per replica that triggers scale-out."
    )
    target_kv_cache_usage: float | None = Field(
        default=None, gt=0, le=1, description="Optional second signal, vllm:kv_cache_usage_perc."
    )
    fallback_replicas: int = Field(ge=1, description="Replicas while the metric is unreadable.")
    polling_interval_seconds: int = Field(default=15, ge=5, le=300)
    scale_up: ScalingRules
    scale_down: ScalingRules

    @model_validator(mode="after")
    def _bounds(self) -> ModelAutoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas {self.min_replicas} is greater than max_replicas "
                f"{self.max_replicas}; allowed: min_replicas <= max_replicas"
            )
        if not self.min_replicas <= self.fallback_replicas <= self.max_replicas:
            raise ValueError(
                f"fallback_replicas {self.fallback_replicas} is outside [min_replicas, "
                f"max_replicas] = [{self.min_replicas}, {self.max_replicas}]"
            )
        return self


class ModelVersion(Strict):
    name: DnsLabel
    source: str = Field(
        description="bucket://<prefix> (the stage's model bucket), s3://<bucket>/<prefix>, or a "
        "Hugging Face id (org/name)."
    )
    served_model_name: str
    image_tag: str = Field(description="Tag of vllm/vllm-openai; needs config/vllm_facts/<tag>.json.")
    gpus_per_replica: int = Field(ge=1, le=8, description="Also the tensor parallel size.")
    node_groups: list[str] = Field(min_length=1, description="GPU node groups it may run on.")
    weights_gib: float | None = Field(default=None, gt=0, description="Size of the weights.")
    weight: int = Field(ge=0, le=100, description="Share of the model's traffic, in percent.")
    startup_timeout_minutes: int = Field(default=20, ge=1, le=120)
    max_request_seconds: int = Field(
        default=120,
        ge=10,
        le=3000,
        description="Longest expected request (queue + prefill + generation). A terminating pod "
        "keeps serving in-flight requests this long; sizes the grace period and ALB deregistration.",
    )
    engine: EngineOptions
    gpu_share: GpuShare | None = Field(
        default=None,
        description="Part of a shared GPU per replica (docs/gpu-sharing.md); default whole GPUs.",
    )

    @field_validator("source")
    @classmethod
    def _valid_source(cls, value: str) -> str:
        return check_model_source(value)

    @field_validator("served_model_name")
    @classmethod
    def _valid_served_name(cls, value: str) -> str:
        if not SERVED_MODEL_NAME.fullmatch(value):
            raise ValueError(
                f"served_model_name {value!r} is not a model name; allowed: one or more characters "
                "without whitespace or control characters, e.g. llama-3-1-8b or "
                "meta-llama/Llama-3.1-8B-Instruct (clients send it as `model`; the gateway matches it "
                "as an HTTP header value)"
            )
        return value

    @field_validator("image_tag")
    @classmethod
    def _valid_tag(cls, value: str) -> str:
        if not IMAGE_TAG.match(value) or value == "latest":
            raise ValueError(f"image tag {value!r} must be a pinned tag such as v0.33.0")
        return check_image_tag(value)

    @field_validator("gpus_per_replica")
    @classmethod
    def _shardable(cls, value: int) -> int:
        if value not in TENSOR_PARALLEL_SIZES:
            raise ValueError(
                f"{value} GPUs per replica (tensor parallel size) cannot shard a model evenly; "
                f"allowed: {', '.join(map(str, TENSOR_PARALLEL_SIZES))}"
            )
        return value

    @model_validator(mode="after")
    def _extra_args_do_not_override(self) -> ModelVersion:
        from config.engine_flags import extra_args_problems

        problems = extra_args_problems(self)
        if problems:
            raise ValueError("engine.extra_args: " + "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _engine_supported_by_image(self) -> ModelVersion:
        # The engine features must exist in the release the image tag pins (config/vllm_support.py).
        speculative = self.engine.speculative
        check_engine(
            image_tag=self.image_tag,
            quantization=self.engine.quantization.value,
            speculative_method=None if speculative is None else speculative.method.value,
            extra_args=self.engine.extra_args,
        )
        return self

    @property
    def tensor_parallel_size(self) -> int:
        return self.gpus_per_replica

    @property
    def from_stage_bucket(self) -> bool:
        return self.source.startswith(STAGE_BUCKET_SCHEME)

    @property
    def stage_bucket_prefix(self) -> str | None:
        """The key prefix in the stage's model bucket, or None for other sources."""
        if not self.from_stage_bucket:
            return None
        return self.source.removeprefix(STAGE_BUCKET_SCHEME).strip("/") + "/"


class ModelConfig(Strict):
    id: DnsLabel = Field(description="Routing id: host <id>.<domain> or header x-model-id.")
    autoscaling: ModelAutoscaling
    slo: ModelSlo
    versions: list[ModelVersion] = Field(min_length=1)
    filtering: FilteringConfig = Field(default_factory=FilteringConfig)  # config/filtering.py

    @field_validator("id")
    @classmethod
    def _id_starts_with_letter(cls, value: str) -> str:
        # It names Services (DNS-1035: a letter first) and ALB action annotations.
        if not value[0].isalpha():
            raise ValueError(f"model id {value!r} must start with a letter (it names Kubernetes Services)")
        return value

    @model_validator(mode="after")
    def _instance_names_fit(self) -> ModelConfig:
        for kind in ALB_ACTION_KEYS:
            key = f"{kind}.{self.id}"
            if len(key) > KUBERNETES_QUALIFIED_NAME_MAX:
                raise ValueError(
                    f"model id {self.id!r} makes the Ingress annotation key "
                    f"alb.ingress.kubernetes.io/{key} with a {len(key)}-character name; allowed: at most "
                    f"{KUBERNETES_QUALIFIED_NAME_MAX} (Kubernetes), so an id of at most "
                    f"{KUBERNETES_QUALIFIED_NAME_MAX - len(kind) - 1} characters"
                )
        for version in self.versions:
            instance = instance_name(self.id, version.name)
            if len(instance) > MAX_INSTANCE_NAME:
                raise ValueError(
                    f"'{instance}' (<id>-<version>) has {len(instance)} characters; allowed: at most "
                    f"{MAX_INSTANCE_NAME}, as it names the Deployment, Service and pod label values"
                )
        return self

    @field_validator("versions")
    @classmethod
    def _versions(cls, value: list[ModelVersion]) -> list[ModelVersion]:
        if len(value) > ALB_TARGET_GROUPS_PER_ACTION:
            raise ValueError(
                f"{len(value)} versions, but the ALB forward action that splits a model's traffic takes "
                f"at most {ALB_TARGET_GROUPS_PER_ACTION} target groups (a fixed ALB quota); allowed: "
                f"1 to {ALB_TARGET_GROUPS_PER_ACTION} versions, retire old ones first"
            )
        repeated = duplicates([version.name for version in value])
        if repeated:
            raise ValueError(f"duplicate version names {repeated}")
        served = {version.served_model_name for version in value}
        if len(served) > 1:
            names = ", ".join(f"{version.name}={version.served_model_name}" for version in value)
            raise ValueError(
                f"versions serve different served_model_name values ({names}); the ALB splits one model's "
                "requests across its versions, and vLLM answers 404 to a `model` it does not serve; "
                "allowed: one served_model_name for all versions of a model"
            )
        total = sum(version.weight for version in value)
        if total != 100:
            weights = ", ".join(f"{version.name}={version.weight}" for version in value)
            raise ValueError(f"version weights sum to {total} ({weights}); allowed: exactly 100")
        return value


class IngressConfig(Strict):
    scheme: Literal["internal", "internet-facing"] = "internal"
    domain: str | None = Field(
        default=None,
        description="Hosts are <model-id>.<domain> (host routing) or <domain> (model routing).",
    )
    certificate_arn: str | None = Field(default=None, description="ACM certificate for domain.")
    auth: Literal["api-key", "none"] = Field(
        default="api-key",
        description="api-key: a bearer key is required on /v1/* (kept in Secrets Manager), checked by "
        "vLLM, or by the gateway in routing 'model'; none: no authentication, only for an internal ALB.",
    )
    routing: Literal["host", "header", "model"] | None = Field(
        default=None,
        description="How a request reaches its model: host <id>.<domain>, header x-model-id, or model "
        "(the OpenAI body's `model`, read by Envoy AI Gateway behind the ALB; docs/serving.md). "
        "Default: host when domain is set, header otherwise.",
    )

    @model_validator(mode="after")
    def _authenticated_when_public(self) -> IngressConfig:
        if self.scheme == "internet-facing" and self.auth != "api-key":
            raise ValueError(
                f"ingress.auth {self.auth!r} with ingress.scheme 'internet-facing'; allowed: 'api-key' "
                "(an internet-facing API must authenticate its callers)"
            )
        return self

    @model_validator(mode="after")
    def _routing(self) -> IngressConfig:
        mode = self.routing_mode
        if mode == "host" and not self.domain:
            raise ValueError(
                "ingress.routing 'host' needs ingress.domain (hosts are <model-id>.<domain>); allowed "
                "without a domain: 'header' or 'model'"
            )
        if mode == "header" and self.domain:
            raise ValueError(
                f"ingress.routing 'header' with ingress.domain {self.domain!r}; allowed with a domain: "
                "'host' (<model-id>.<domain>) or 'model' (one host, <domain>)"
            )
        if mode == "model" and self.auth != "api-key":
            raise ValueError(
                f"ingress.routing 'model' with ingress.auth {self.auth!r}; allowed: 'api-key' (one "
                "endpoint reaches every model and lists them on GET /v1/models; the gateway checks the "
                "key on every route)"
            )
        if mode == "model" and self.scheme == "internet-facing" and not self.has_tls:
            raise ValueError(
                "ingress.routing 'model' with ingress.scheme 'internet-facing' needs ingress.domain and "
                "ingress.certificate_arn (HTTPS): every model's prompts and the API key cross one listener"
            )
        return self

    @property
    def routing_mode(self) -> Literal["host", "header", "model"]:
        """The configured mode, or the one a stage had before the field existed."""
        if self.routing is not None:
            return self.routing
        return "host" if self.domain else "header"

    @property
    def requires_api_key(self) -> bool:
        return self.auth == "api-key"

    @field_validator("domain")
    @classmethod
    def _dns_name(cls, value: str | None) -> str | None:
        if value is None:
            return value
        labels = value.split(".")
        bad = [label for label in labels if not DNS_LABEL.match(label)]
        if len(labels) < 2 or bad or len(value) > DNS_NAME_MAX:
            raise ValueError(
                f"{value!r} is not a DNS domain; allowed: lower-case labels of letters, digits and '-' "
                f"(1 to 63 characters each) joined by dots, at most {DNS_NAME_MAX} characters, "
                "e.g. llm.example.com" + (f" (bad labels: {bad})" if bad else "")
            )
        return value

    @field_validator("certificate_arn")
    @classmethod
    def _acm_arn(cls, value: str | None) -> str | None:
        if value is not None and not CERTIFICATE_ARN.match(value):
            raise ValueError(
                f"{value!r} is not an ACM certificate ARN; allowed: "
                "arn:aws:acm:<region>:<12-digit account>:certificate/<uuid>"
            )
        return value

    @model_validator(mode="after")
    def _certificate_with_domain(self) -> IngressConfig:
        if self.domain and not self.certificate_arn:
            raise ValueError("ingress.certificate_arn is required when ingress.domain is set")
        if self.certificate_arn and not self.domain:
            raise ValueError(
                "ingress.certificate_arn is set but ingress.domain is not; the certificate is only used "
                "for the hosts under ingress.domain: set ingress.domain or remove the certificate"
            )
        return self

    @property
    def certificate_region(self) -> str | None:
        match = CERTIFICATE_ARN.match(self.certificate_arn or "")
        return match["region"] if match else None

    @property
    def certificate_account(self) -> str | None:
        match = CERTIFICATE_ARN.match(self.certificate_arn or "")
        return match["account"] if match else None

    @property
    def has_tls(self) -> bool:
        return self.domain is not None and self.certificate_arn is not None


class WafConfig(Strict):
    rate_limit_per_5_minutes: int = Field(default=2000, ge=10, le=2_000_000_000)
    allow_cidrs: list[str] = Field(default_factory=list, description="Empty: no allow-list.")

    @field_validator("allow_cidrs")
    @classmethod
    def _valid_cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            check_not_open(cidr)
        return value
