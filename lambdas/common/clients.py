"""Per-container client cache: AWS and Kubernetes clients are built once and reused.

boto3 is imported on first use rather than at module import: the handler modules then load in
a few tens of milliseconds and a rejected event never pays for it.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from lambdas.common.eks_token import TokenProvider
from lambdas.common.k8s import K8sClient, ssl_context_from_ca_data
from lambdas.common.settings import ClusterSettings

_lock = threading.Lock()
_aws: dict[str, Any] = {}
_k8s: dict[ClusterSettings, K8sClient] = {}

K8S_TIMEOUT_SECONDS = 10.0


def aws_client(service: str) -> Any:
    """A boto3 client for `service` in the function's region, created once per container."""
    with _lock:
        client = _aws.get(service)
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=3,
                read_timeout=10,
            )
            region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            client = boto3.client(service, region_name=region, config=config)  # type: ignore[call-overload]
            _aws[service] = client
        return client


def k8s_client(cluster: ClusterSettings) -> K8sClient:
    """A Kubernetes client for `cluster`, created once per container and per cluster settings."""
    with _lock:
        client = _k8s.get(cluster)
        if client is None:
            token = TokenProvider(lambda: aws_client("sts"), cluster.name)
            client = K8sClient(
                cluster.endpoint,
                ssl_context_from_ca_data(cluster.ca_data),
                token,
                timeout=K8S_TIMEOUT_SECONDS,
            )
            _k8s[cluster] = client
        return client


def reset(*, aws: bool = True) -> None:
    """Forget cached clients (tests: a new fake API server, or a new moto context)."""
    with _lock:
        for client in _k8s.values():
            client.close()
        _k8s.clear()
        if aws:
            _aws.clear()
