"""Limits of AWS and Kubernetes that stage files can exceed, each with where it is documented.

Kept as data in one place so the rules that use them (and config/README.md) quote one number.
tests/unit/config/test_limits.py pins every value.
"""

from __future__ import annotations

# Kubernetes (k8s.io/apimachinery/pkg/util/validation/validation.go).
KUBERNETES_NAME_MAX = 63
"""DNS-1035 label (Service names) and DNS-1123 label: at most 63 characters."""
KUBERNETES_QUALIFIED_NAME_MAX = 63
"""The name part of an annotation or label key (after the optional 'prefix/'): qualifiedNameMaxLength."""
KUBERNETES_LABEL_VALUE_MAX = 63
"""A label value (node-group labels): LabelValueMaxLength."""
DNS_NAME_MAX = 253
"""A DNS name (and a Kubernetes DNS-1123 subdomain), e.g. an Ingress host: at most 253 characters."""

# Application Load Balancer quotas
# (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-limits.html).
ALB_TARGET_GROUPS_PER_ACTION = 5
"""'Target Groups per Action per Application Load Balancer': 5, not adjustable."""
ALB_TARGET_GROUPS_PER_LOAD_BALANCER = 100
"""'Target Groups per Application Load Balancer': 100, not adjustable."""

# AWS tags (https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html, "Tag naming limits").
AWS_TAGS_PER_RESOURCE = 50
AWS_TAG_KEY_MAX = 128
AWS_TAG_VALUE_MAX = 256
AWS_TAG_RESERVED_PREFIX = "aws:"
"""Reserved in any letter case, for keys and values."""
AWS_TAG_CHARACTERS = r"^[\w\s+\-=.:/@]*$"
"""Letters, digits, spaces and + - = . _ : / @ (the set every tagging service accepts)."""
