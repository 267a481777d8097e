"""A model's service-level objectives: what its burn-rate alerts (observability/slo.py) measure."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import Field, field_validator

from config.base import Strict

VLLM_BUCKETS_FILE = Path(__file__).resolve().parents[1] / "data" / "vllm_histogram_buckets.yaml"
TTFT_HISTOGRAM = "vllm:time_to_first_token_seconds"
TTFT_OBJECTIVE = 0.95
"""Share of requests whose first token must come within ``ttft_p95_seconds`` (the field's name)."""


@cache
def ttft_bucket_bounds() -> tuple[float, ...]:
    """TTFT bucket bounds every vLLM release in the facts file has, so the SLI is exact, not interpolated."""
    releases = yaml.safe_load(VLLM_BUCKETS_FILE.read_text())["releases"]
    common = set.intersection(*(set(buckets[TTFT_HISTOGRAM]) for buckets in releases.values()))
    return tuple(sorted(float(bound) for bound in common))


class ModelSlo(Strict):
    """Objectives over a rolling ``window_days``; the error budget is 1 - objective."""

    ttft_p95_seconds: float = Field(
        gt=0,
        description="95% of requests get their first token within this; must be a bucket bound of "
        "vllm:time_to_first_token_seconds (data/vllm_histogram_buckets.yaml).",
    )
    availability_objective: float = Field(
        default=0.999, ge=0.9, le=0.9999, description="Share of /v1 requests answered without a 5xx."
    )
    window_days: int = Field(default=30, ge=7, le=90, description="SLO window; burn rates derive from it.")
    min_requests_per_hour: int = Field(
        default=60,
        ge=1,
        description="Traffic guard: burn-rate alerts stay silent below this request rate in their long "
        "window (a few errors of a low-traffic canary are not an outage).",
    )

    @field_validator("ttft_p95_seconds")
    @classmethod
    def _on_a_bucket_bound(cls, value: float) -> float:
        bounds = ttft_bucket_bounds()
        if value not in bounds:
            allowed = ", ".join(f"{bound:g}" for bound in bounds)
            raise ValueError(
                f"{value:g} s is not a bucket bound of {TTFT_HISTOGRAM}, so the SLI would be "
                f"interpolated; allowed: {allowed}"
            )
        return value
