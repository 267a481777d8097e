"""The service limits the rules quote, pinned to the documents named in config/limits.py."""

from __future__ import annotations

from config import limits
from config.model_families import MODEL_FAMILIES, family_of
from config.operations import DAY_NAMES, MONTH_NAMES


def test_kubernetes_limits() -> None:
    # k8s.io/apimachinery validation: DNS1035LabelMaxLength, qualifiedNameMaxLength,
    # DNS1123SubdomainMaxLength, LabelValueMaxLength.
    assert (
        limits.KUBERNETES_NAME_MAX,
        limits.KUBERNETES_QUALIFIED_NAME_MAX,
        limits.DNS_NAME_MAX,
        limits.KUBERNETES_LABEL_VALUE_MAX,
    ) == (63, 63, 253, 63)


def test_alb_quotas() -> None:
    # "Target Groups per Action per Application Load Balancer 5 No"; "Target Groups per ALB 100 No".
    assert (limits.ALB_TARGET_GROUPS_PER_ACTION, limits.ALB_TARGET_GROUPS_PER_LOAD_BALANCER) == (5, 100)


def test_aws_tag_limits() -> None:
    assert (limits.AWS_TAGS_PER_RESOURCE, limits.AWS_TAG_KEY_MAX, limits.AWS_TAG_VALUE_MAX) == (50, 128, 256)
    assert limits.AWS_TAG_RESERVED_PREFIX == "aws:"


def test_eventbridge_scheduler_names() -> None:
    assert DAY_NAMES == ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")  # day-of-week 1 is Sunday
    assert MONTH_NAMES[0] == "JAN"
    assert len(MONTH_NAMES) == 12


def test_model_family_facts_from_their_config_json() -> None:
    facts = {
        f.key: (f.context_tokens, f.attention_heads, f.kv_heads, f.layers, f.hidden_size)
        for f in MODEL_FAMILIES
    }
    assert facts == {
        "llama-3-1-8b": (131072, 32, 8, 32, 4096),
        "llama-3-1-70b": (131072, 64, 8, 80, 8192),
        "llama-3-2-1b": (131072, 32, 8, 16, 2048),
    }


def test_sources_are_matched_to_families_by_name() -> None:
    assert family_of("bucket://llama-3-1-8b-instruct-awq").key == "llama-3-1-8b"  # type: ignore[union-attr]
    assert family_of("meta-llama/Llama-3.1-70B-Instruct").key == "llama-3-1-70b"  # type: ignore[union-attr]
    assert family_of("s3://models/llama-3-1-80b") is None
    assert family_of("bucket://mistral-7b") is None
