"""Cluster add-ons, node autoscaling and observability settings of a stage."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from config.base import Strict, check_retention

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ClusterAutoscalerConfig(Strict):
    scale_down_unneeded_minutes: int = Field(default=10, ge=1, le=1440)
    scale_down_utilization_threshold: float = Field(default=0.5, gt=0, le=1)
    # GPU nodes are judged only by GPU requests / allocatable GPUs (cluster-autoscaler
    # config/flags/flags.go), so the CPU/memory threshold above never applies to them.
    scale_down_gpu_utilization_threshold: float = Field(default=0.5, gt=0, le=1)
    scale_down_delay_after_add_minutes: int = Field(default=10, ge=0, le=1440)
    scan_interval_seconds: int = Field(default=10, ge=1, le=300)
    node_provision_minutes: int = Field(
        default=4, ge=1, le=60, description="Expected boot+join time of a GPU node (planning)."
    )


# Secrets Manager secret names: letters, digits and /_+=.@- (Secrets Manager API reference, CreateSecret).
SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")


class ImageCacheConfig(Strict):
    """ECR pull-through cache for Docker Hub images (vLLM, the OpenTelemetry collector)."""

    docker_hub_secret_name: str | None = Field(
        default=None,
        description="Name of a Secrets Manager secret in the stage's account and region, created by "
        "the operator, with JSON keys `username` and `accessToken` (a Docker Hub access token). "
        "Unset: no cache, nodes pull Docker Hub images anonymously.",
    )

    @field_validator("docker_hub_secret_name")
    @classmethod
    def _secret_name(cls, value: str | None) -> str | None:
        if value is not None and (not SECRET_NAME.match(value) or value.startswith("ecr-pullthroughcache/")):
            raise ValueError(
                f"{value!r} is not a secret name the stack can read; allowed: letters, digits and "
                "/_+=.@- , not starting with ecr-pullthroughcache/ (the stack creates that copy itself)"
            )
        return value


class ObservabilityConfig(Strict):
    # AMP's managed scraper rejects an interval below 30 s ("Scraper limitations", AMP user guide).
    scrape_interval_seconds: int = Field(default=30, ge=30, le=300)
    trace_sampling_ratio: float = Field(default=0.05, ge=0, le=1)
    alert_emails: list[str] = Field(default_factory=list, description="Ticket topic (warnings) e-mail.")
    pager_subscriptions: list[str] = Field(
        default_factory=list,
        description="Pager topic (critical): a paging service's https:// endpoint or an e-mail address.",
    )
    container_log_retention_days: int = Field(default=30)
    alert_queue_depth_factor: float = Field(
        default=2.0,
        ge=1,
        le=10,
        description="HighQueueDepth fires when waiting requests per replica exceed this many times "
        "the model's target_queue_depth (the autoscaler is not keeping up).",
    )
    alert_kv_cache_usage_ratio: float = Field(default=0.95, gt=0, le=1)
    alert_spot_interruptions_per_hour: int = Field(default=3, ge=1, le=100)
    runbook_base_url: str = Field(
        default="https://github.com/example-org/llm-inference/blob/main/docs/observability.md",
        description="Page with one section per alert; alerts link to <url>#<alert name in lower case>.",
    )

    @field_validator("runbook_base_url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        if not value.startswith("https://") or "#" in value or " " in value:
            raise ValueError(f"{value!r} is not an https URL without a fragment; allowed: https://host/path")
        return value

    @field_validator("container_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return check_retention(value)

    @field_validator("pager_subscriptions")
    @classmethod
    def _pager_endpoints(cls, value: list[str]) -> list[str]:
        bad = [item for item in value if not (item.startswith("https://") or EMAIL.match(item))]
        if bad:
            raise ValueError(f"{bad} are neither https:// endpoints nor e-mail addresses")
        return value

    @field_validator("alert_emails")
    @classmethod
    def _valid_emails(cls, value: list[str]) -> list[str]:
        bad = [address for address in value if not EMAIL.match(address)]
        if bad:
            raise ValueError(f"{bad} are not e-mail addresses")
        return value
