"""Every fact that changes with a Kubernetes minor release, in one table.

A new minor version for clusters is a row in ``RELEASES`` (and ``kube-proxy`` in config/<stage>.yaml).
Moving the tooling (kubectl layer, cdk8s-plus, manifest schemas, the smoke check's kubectl) is
``TOOLING_RELEASE`` and ``KUBECTL_VERSION`` here plus the two packages pinned in requirements.txt and
the ``cdk8s_plus_<minor>`` / ``KubectlV<minor>Layer`` imports, which
tests/unit/config/test_kubernetes_releases.py checks against this module.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KubernetesRelease:
    """One Kubernetes minor version a stage may run.

    ``version``: EKS's version string (``eks.KubernetesVersion.of``); ``autoscaler_image_tag``: the
    Cluster Autoscaler release of the same minor (the autoscaler's minor must match the cluster's;
    the chart's default is not trusted for it).
    """

    version: str
    autoscaler_image_tag: str


RELEASES: dict[str, KubernetesRelease] = {
    release.version: release
    for release in (
        KubernetesRelease(version="1.35", autoscaler_image_tag="v1.35.0"),
        KubernetesRelease(version="1.36", autoscaler_image_tag="v1.36.0"),
    )
}
SUPPORTED_KUBERNETES_VERSIONS = tuple(RELEASES)

TOOLING_RELEASE = "1.36"
"""The minor of the kubectl layer (aws-cdk.lambda-layer-kubectl-v36) and cdk8s-plus-36, and the
schema version manifests are validated against. kubectl manages clusters one minor either side."""
KUBECTL_VERSION = "v1.36.0"
"""The kubectl release the post-deploy smoke check downloads (dl.k8s.io), of the tooling minor."""
