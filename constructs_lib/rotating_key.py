"""The one kind of customer-managed KMS key the stages create: rotating, and kept on delete."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from constructs import Construct

PENDING_WINDOW_DAYS = 30
"""KMS's longest deletion wait (7-30 days): a key deleted by mistake can still be recovered."""


class RotatingRetainedKey(kms.Key):
    """A ``kms.Key`` with automatic rotation, the longest deletion window, and RETAIN: data encrypted
    under it (logs, weights, secrets, volumes) outlives the stack, so the key must too.

    The construct id is the key's own, so a key built with ``kms.Key`` before keeps its logical id.

    :param description: what the key encrypts.
    :param alias: an alias to create with it. Default: none.
    """

    def __init__(self, scope: Construct, id_: str, *, description: str, alias: str | None = None) -> None:
        super().__init__(
            scope,
            id_,
            description=description,
            alias=alias,
            enable_key_rotation=True,
            pending_window=Duration.days(PENDING_WINDOW_DAYS),
            removal_policy=RemovalPolicy.RETAIN,
        )
