"""The Kubernetes-release table (config/kubernetes_releases.py) agrees with the code and pins it feeds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aws_cdk import aws_eks_v2 as eks

from config.kubernetes_releases import (
    KUBECTL_VERSION,
    RELEASES,
    SUPPORTED_KUBERNETES_VERSIONS,
    TOOLING_RELEASE,
)

ROOT = Path(__file__).resolve().parents[3]
REQUIREMENTS = (ROOT / "requirements.txt").read_text()
VERSIONED_IMPORT = re.compile(r"\b(?:cdk8s_plus_|lambda_layer_kubectl_v|KubectlV)(\d+)")


def _minor(version: str) -> int:
    major, minor = version.removeprefix("v").split(".")[:2]
    assert major == "1"
    return int(minor)


@pytest.mark.parametrize("version", SUPPORTED_KUBERNETES_VERSIONS)
def test_aws_cdk_lib_knows_every_supported_version(version: str) -> None:
    """eks.KubernetesVersion.of accepts any string; the enum member proves aws-cdk-lib knows the version."""
    member = getattr(eks.KubernetesVersion, f"V{version.replace('.', '_')}", None)
    assert member is not None, f"aws-cdk-lib has no eks.KubernetesVersion for {version}"
    assert member.version == version


@pytest.mark.parametrize("version", SUPPORTED_KUBERNETES_VERSIONS)
def test_autoscaler_minor_matches_the_cluster_minor(version: str) -> None:
    assert _minor(RELEASES[version].autoscaler_image_tag) == _minor(version)


@pytest.mark.parametrize("version", SUPPORTED_KUBERNETES_VERSIONS)
def test_tooling_is_within_kubectl_skew_of_every_supported_version(version: str) -> None:
    assert abs(_minor(TOOLING_RELEASE) - _minor(version)) <= 1


def test_kubectl_download_is_the_tooling_minor() -> None:
    assert _minor(KUBECTL_VERSION) == _minor(TOOLING_RELEASE)


def test_pinned_packages_and_imports_are_the_tooling_minor() -> None:
    minor = _minor(TOOLING_RELEASE)
    assert re.search(rf"^cdk8s-plus-{minor}==", REQUIREMENTS, re.MULTILINE)
    assert re.search(rf"^aws-cdk\.lambda-layer-kubectl-v{minor}==", REQUIREMENTS, re.MULTILINE)
    found = {
        (str(path.relative_to(ROOT)), int(match))
        for folder in ("k8s_charts", "stacks", "constructs_lib")
        for path in (ROOT / folder).rglob("*.py")
        for match in VERSIONED_IMPORT.findall(path.read_text())
    }
    assert found, "no cdk8s-plus or kubectl layer import found"
    assert {f"{path}: {m}" for path, m in found if m != minor} == set()
