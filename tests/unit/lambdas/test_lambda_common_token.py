"""EKS token: the same shape `aws eks get-token` prints, cached and refreshable."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from lambdas.common.eks_token import TOKEN_PREFIX, TokenProvider, make_token


def decode(token: str) -> str:
    body = token.removeprefix(TOKEN_PREFIX)
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


@pytest.fixture
def sts() -> object:
    return boto3.client("sts", region_name="us-east-1")


def test_token_is_prefixed_urlsafe_base64_without_padding(sts: object) -> None:
    token = make_token(sts, "inference-dev")
    assert token.startswith("k8s-aws-v1.")
    assert "=" not in token
    assert "+" not in token
    assert "/" not in token


def test_token_is_presigned_get_caller_identity_bound_to_cluster(sts: object) -> None:
    url = urlsplit(decode(make_token(sts, "inference-dev")))
    query = parse_qs(url.query)
    assert url.scheme == "https"
    assert url.hostname == "sts.us-east-1.amazonaws.com"
    assert query["Action"] == ["GetCallerIdentity"]
    assert query["X-Amz-Expires"] == ["60"]
    # The cluster name header is signed, so the token only works for this cluster.
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0].split(";")


def test_tokens_for_different_clusters_differ(sts: object) -> None:
    assert make_token(sts, "a") != make_token(sts, "b")


def test_provider_reuses_token_until_invalidated_or_old() -> None:
    now = [0.0]
    created = []

    def factory() -> object:
        created.append(1)
        return boto3.client("sts", region_name="us-east-1")

    provider = TokenProvider(factory, "c", reuse_seconds=600, clock=lambda: now[0])
    first = provider()
    assert provider() == first
    assert len(created) == 1
    provider.invalidate()
    provider()
    assert len(created) == 2
    now[0] = 601
    provider()
    assert len(created) == 3
