"""Production safety rules: errors in prod, warnings in other stages, waived only in writing.

A stage waives a rule with `safety_overrides: {<rule>: <reason>}` in its file, where a reviewer sees
it. An override of a rule that does not apply is an error, so waivers do not outlive their reason.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from config.cluster import CapacityType

if TYPE_CHECKING:
    from config.stage import StageConfig

OVERRIDE_REASON_MIN = 20
"""Characters a waiver's reason needs: a sentence a reviewer can judge, not 'ok'."""


class SafetyRule(StrEnum):
    INTERNET_FACING_WITHOUT_TLS = "internet-facing-without-tls"
    ALL_GPU_CAPACITY_ON_SPOT = "all-gpu-capacity-on-spot"
    HUGGING_FACE_SOURCE = "hugging-face-source"
    OFFHOURS_ZERO_FLOOR = "offhours-zero-floor"


SAFETY_RULES = {
    SafetyRule.INTERNET_FACING_WITHOUT_TLS: "an internet-facing ALB without ingress.domain and "
    "certificate_arn serves prompts and completions in clear text over HTTP",
    SafetyRule.ALL_GPU_CAPACITY_ON_SPOT: "every node group of a model is Spot, so one Spot reclaim in the "
    "pools can take the whole model down",
    SafetyRule.HUGGING_FACE_SOURCE: "a Hugging Face source downloads weights from the internet at every "
    "pod start: slower, rate-limited, and not pinned to a reviewed copy in the stage's bucket",
    SafetyRule.OFFHOURS_ZERO_FLOOR: "offhours.floor_replicas 0 leaves the models with no replica at night: "
    "every request fails until the morning scale-up",
}
"""Each rule and why it matters (config/README.md lists this table)."""


def safety_findings(config: StageConfig) -> list[tuple[SafetyRule, str]]:
    """The rules this stage breaks, each with what in the file breaks it."""
    findings: list[tuple[SafetyRule, str]] = []
    ingress = config.ingress
    if ingress.scheme == "internet-facing" and not ingress.has_tls:
        findings.append((SafetyRule.INTERNET_FACING_WITHOUT_TLS, "ingress.scheme is internet-facing"))
    for model in config.models:
        groups = {name for version in model.versions for name in version.node_groups}
        capacity = {group.capacity_type for group in config.cluster.gpu_node_groups if group.name in groups}
        if capacity == {CapacityType.SPOT}:
            findings.append(
                (SafetyRule.ALL_GPU_CAPACITY_ON_SPOT, f"models[{model.id}] runs on {sorted(groups)}")
            )
        for version in model.versions:
            sources = [version.source]
            if version.engine.speculative and version.engine.speculative.draft_model:
                sources.append(version.engine.speculative.draft_model)
            for source in sources:
                if not source.startswith(("bucket://", "s3://")):
                    findings.append(
                        (
                            SafetyRule.HUGGING_FACE_SOURCE,
                            f"models[{model.id}].versions[{version.name}] {source!r}",
                        )
                    )
    if config.offhours.enabled and config.offhours.floor_replicas == 0:
        findings.append((SafetyRule.OFFHOURS_ZERO_FLOOR, "offhours.enabled with floor_replicas 0"))
    return findings


def describe(rule: SafetyRule, where: str) -> str:
    return (
        f"safety rule {rule.value}: {where}: {SAFETY_RULES[rule]}; fix it, or waive it with "
        f"safety_overrides: {{{rule.value}: <reason>}}"
    )
