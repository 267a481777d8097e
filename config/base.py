"""Shared building blocks for the stage configuration models."""

from __future__ import annotations

import ipaddress
import re
import types
import typing
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationInfo, field_validator


def _accepts_bool(annotation: Any) -> bool:
    """Whether a field's type admits a boolean on purpose (bool itself, or a union holding bool)."""
    if annotation is bool:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, Annotated):
        return any(_accepts_bool(arg) for arg in typing.get_args(annotation))
    return False


def _is_number(annotation: Any) -> bool:
    if annotation in (int, float):
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, Annotated):
        return any(_is_number(arg) for arg in typing.get_args(annotation))
    return False


class Strict(BaseModel):
    """Frozen, and unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic's lax mode reads `min_replicas: true` as 1; YAML `yes`/`on` become booleans too.
        if isinstance(value, bool) and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            if _is_number(annotation) and not _accepts_bool(annotation):
                raise ValueError(f"{str(value).lower()} is a boolean; allowed: a number")
        return value


DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN, max_length=63)]
"""A Kubernetes-style DNS label: lower-case letters, digits and '-', 1-63 characters."""

PATTERN_IN_WORDS = {
    DNS_LABEL_PATTERN: "a DNS label: 1 to 63 lower-case letters, digits and '-', starting and ending "
    "with a letter or digit (e.g. llama-3-1-8b)",
}
"""What each regular expression of the models means, for error messages (a regex is no help to a user)."""

KUBERNETES_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827)
"""Retention periods CloudWatch Logs accepts, in days."""


def check_retention(days: int) -> int:
    if days not in LOG_RETENTION_DAYS:
        raise ValueError(f"{days} days is not a CloudWatch Logs retention; allowed: {LOG_RETENTION_DAYS}")
    return days


def parse_cidr(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A network in CIDR notation, or a ValueError that says what is allowed (and names host bits)."""
    try:
        return ipaddress.ip_network(cidr, strict=True)
    except ValueError:
        pass
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise ValueError(f"{cidr!r} is not a valid CIDR; allowed: e.g. 203.0.113.0/24") from None
    raise ValueError(host_bits_message(cidr, network))


def host_bits_message(cidr: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    address = cidr.split("/", 1)[0]
    return (
        f"{cidr!r} has host bits set: with a /{network.prefixlen} prefix the address bits after "
        f"the first {network.prefixlen} must be zero; allowed: {network.with_prefixlen} (the network "
        f"that contains it), or {address}/{network.max_prefixlen} for that single address"
    )


OPEN_PREFIX_MAX = 8
"""An IPv4 allow-list entry shorter than /8 (more than 16 million addresses) is as good as open."""


def check_not_open(cidr: str) -> None:
    """A CIDR of an allow-list: valid, without host bits, and not so wide that it allows everyone."""
    network = parse_cidr(cidr)
    open_below = OPEN_PREFIX_MAX if network.version == 4 else OPEN_PREFIX_MAX * 4
    if network.prefixlen < open_below:
        raise ValueError(
            f"{cidr!r} covers {network.num_addresses:,} addresses, which is as good as open; allowed: "
            f"prefixes of /{open_below} or longer listing your own ranges"
        )


def duplicates(values: list[str]) -> list[str]:
    """The values that occur more than once, in first-seen order."""
    seen: set[str] = set()
    repeated: list[str] = []
    for value in values:
        if value in seen and value not in repeated:
            repeated.append(value)
        seen.add(value)
    return repeated
