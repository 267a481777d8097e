"""ARNs in this stack's partition, region and account, and how cdk-nag spells them in finding ids."""

from __future__ import annotations

from aws_cdk import Stack, Token


def _nag(value: str, pseudo: str) -> str:
    return f"<AWS::{pseudo}>" if Token.is_unresolved(value) else value


def scoped_arn(stack: Stack, *, service: str, resource: str) -> tuple[str, str]:
    """``arn:<partition>:<service>:<region>:<account>:<resource>`` and its cdk-nag rendering.

    The rendering is what an ``AwsSolutions-IAM5[Resource::...]`` acknowledgement must name; it
    differs between environment-agnostic stages (pseudo parameters) and pinned ones (literals).
    """
    arn = f"arn:{stack.partition}:{service}:{stack.region}:{stack.account}:{resource}"
    nag = (
        f"arn:{_nag(stack.partition, 'Partition')}:{service}:{_nag(stack.region, 'Region')}:"
        f"{_nag(stack.account, 'AccountId')}:{resource}"
    )
    return arn, nag
