"""Fixtures for the Lambda tests: fake AWS (moto), a fake Kubernetes API, cluster env vars."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# pytest puts this folder, not the repository root, on sys.path (tests/ is not a package):
# add the root, so `lambdas` imports as it does in Lambda, and tests/, for the `k8s_fake`
# package (a top-level name, as mypy maps it when it checks the whole tree).
ROOT = Path(__file__).resolve().parents[3]
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from k8s_fake import FakeKubernetes, TlsMaterial, make_tls_material  # noqa: E402
from lambda_fakes import LambdaContextStub  # noqa: E402

from lambdas.common import clients  # noqa: E402


@pytest.fixture(autouse=True)
def _lambda_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The variables Lambda and CDK set, with fake credentials so nothing reaches AWS."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "LlmInferenceTest",
        "POWERTOOLS_DEV": "false",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    clients.reset(aws=False)
    yield
    clients.reset(aws=False)


@pytest.fixture(scope="session")
def tls() -> TlsMaterial:
    return make_tls_material()


@pytest.fixture
def k8s(tls: TlsMaterial) -> Iterator[FakeKubernetes]:
    with FakeKubernetes(tls=tls) as api:
        yield api


@pytest.fixture
def cluster_env(monkeypatch: pytest.MonkeyPatch, k8s: FakeKubernetes) -> FakeKubernetes:
    monkeypatch.setenv("CLUSTER_NAME", "inference-dev")
    monkeypatch.setenv("CLUSTER_ENDPOINT", k8s.endpoint)
    monkeypatch.setenv("CLUSTER_CA_DATA", k8s.ca_data)
    return k8s


@pytest.fixture(scope="package")
def _moto() -> Iterator[None]:
    # Starting moto costs ~0.3 s; start it once for this folder and keep tests apart by
    # creating fresh resources (instances, uniquely named clusters) in each test.
    from moto import mock_aws

    clients.reset()
    with mock_aws():
        yield
    clients.reset()


@pytest.fixture
def aws(_moto: None) -> None:
    """moto for EC2, EKS and STS. The function's cached boto3 clients live as long as moto:
    creating clients is the slowest part of a test, and moto's state is what tests change."""


@pytest.fixture
def context() -> LambdaContextStub:
    return LambdaContextStub()
