"""Acknowledging cdk-nag findings: one call per reason, next to the code it excuses."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, *finding_ids: str, reason: str) -> None:
    """Accept the named findings on `construct` (and its children) for `reason`."""
    Validations.of(construct).acknowledge(
        *(Acknowledgment(id=finding_id, reason=reason) for finding_id in finding_ids)
    )
