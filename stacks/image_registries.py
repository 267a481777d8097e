"""Every container registry the platform pulls from, and how each serves image blobs to AWS clients.

Same-region S3 traffic from the VPC must pass the S3 gateway endpoint's policy (network_stack.py),
and several registries answer a blob download from an AWS address with a redirect to S3. A registry
whose bucket is missing from the policy fails its first pull with 403 AccessDenied
(ImagePullBackOff). The endpoint policy's public-bucket statement is built from this table, and
tests/unit/security/test_image_registries.py fails when any image (own manifests, Helm add-ons'
values and chart defaults, EKS add-ons) comes from a registry that is not listed here.

Sources checked 2026-11-29. Bucket names are patterns: ``{region}`` is the stage's region. A bucket in
another region than the stage's is reached through the NAT and needs no entry, but listing it is
harmless and covers a stage in that region.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass


@dataclass(frozen=True)
class RegistryBlobs:
    """How one registry serves blobs to a client with an AWS address."""

    s3_buckets: tuple[str, ...]
    """S3 buckets the registry redirects blob downloads to (name patterns); empty: not S3."""
    served_by: str
    """Where the blobs come from, in a few words (the CDN when not S3)."""
    source: str
    """Where that was checked."""
    verified: bool = True
    """False: no source says where the blobs come from; docs/security.md lists it as unverified."""


ECR_LAYER_BUCKET = "prod-{region}-starport-layer-bucket"
DOCKER_HUB_BUCKET = "docker-images-prod"

ECR_PRIVATE = "*.dkr.ecr.*.amazonaws.com"
"""Any account's private ECR registry: ours (the Docker Hub pull-through cache) and the AWS accounts
EKS add-on images come from (602401143452 and the per-region ones)."""

REGISTRIES: dict[str, RegistryBlobs] = {
    ECR_PRIVATE: RegistryBlobs(
        s3_buckets=(ECR_LAYER_BUCKET,),
        served_by="presigned URLs to the region's ECR layer bucket",
        source="ECR user guide, vpc-endpoints.html, 'Minimum Amazon S3 bucket permissions for Amazon ECR' "
        "(arn:aws:s3:::prod-region-starport-layer-bucket/*); AWS data perimeter examples, "
        "vpc_endpoint_policies/s3_endpoint_policy.json",
    ),
    "registry.k8s.io": RegistryBlobs(
        s3_buckets=("prod-registry-k8s-io-{region}",),
        served_by="redirect to its own public bucket in the client's AWS region",
        source="github.com/kubernetes/registry.k8s.io cmd/archeio/README.md ('AWS clients are detected by "
        "client IP address and redirect to a local S3 bucket copy only when requesting content blobs') "
        "and cmd/archeio/internal/app/buckets.go awsRegionToHostURL",
    ),
    "quay.io": RegistryBlobs(
        s3_buckets=("quayio-production-s3",),
        served_by="presigned URLs to its us-east-1 bucket for AWS clients, CloudFront otherwise",
        source="quay/quay storage/cloud.py CloudFrontedS3Storage.get_direct_download_url; OpenShift docs "
        "modules/configuring-firewall.adoc ('Required to access Quay image content in AWS')",
    ),
    "docker.io": RegistryBlobs(
        s3_buckets=(DOCKER_HUB_BUCKET,),
        served_by="Cloudflare (production.cloudflare.docker.com, docker-images-prod.<id>.r2."
        "cloudflarestorage.com) or CloudFront (production.cloudfront.docker.com); AWS clients have been "
        "redirected to the S3 bucket docker-images-prod",
        source="github.com/docker/hub-feedback issue 1318 and github.com/rancher/os issue 2032 (403 "
        "AccessDenied behind an S3 endpoint policy until arn:aws:s3:::docker-images-prod/* is allowed); "
        "moby/moby issue 34185; Docker docs desktop/setup/allow-list.md (docker/docs PRs 21867, 25122) "
        "for the CDN hosts. Whether Docker still sends AWS clients to S3 is not documented today: the "
        "bucket stays allowed (safe side for a first deploy)",
    ),
    "public.ecr.aws": RegistryBlobs(
        s3_buckets=(),
        served_by="not S3: CloudFront (d2glxqk2uabbnd.cloudfront.net, d5l0dvt14r5h8.cloudfront.net)",
        source="AWS News blog 'Amazon ECR Public: A New Public Container Registry' ('ECR Public caches "
        "image layers in Amazon CloudFront'); "
        "EKS Anywhere docs, domains to allow, quoted in github.com/docker/sbx-releases issue 525 "
        "(403 from d2glxqk2uabbnd.cloudfront.net when blocked)",
    ),
    "ghcr.io": RegistryBlobs(
        s3_buckets=(),
        served_by="not S3: pkg-containers.githubusercontent.com (GitHub's CDN)",
        source="GitHub docs 'Working with the Container registry' as summarised by pullist ghcr.json "
        "('layer downloads redirect to pkg-containers.githubusercontent.com'); Talos docs egress-domains "
        "('*.githubusercontent.com (backing blob storage for images)')",
    ),
    "nvcr.io": RegistryBlobs(
        s3_buckets=(),
        served_by="unknown: no NVIDIA document names the host or bucket nvcr.io blobs come from",
        source="searched the NGC user guides and the GPU Operator air-gapped and proxy guides: none lists "
        "blob hosts. ECR pull-through cache cannot front it (CreatePullThroughCacheRule "
        "upstreamRegistryUrl lists ecr, ecr-public, docker-hub, ghcr.io, gitlab, k8s, azurecr, quay)",
        verified=False,
    ),
}
"""Registry host (or host pattern) -> how it serves blobs. One entry per registry any image uses."""

DOCKER_HUB_HOSTS = ("docker.io", "registry-1.docker.io", "index.docker.io")


def registry_host(image: str) -> str:
    """The registry an image reference is pulled from (Docker's rules: no host means Docker Hub)."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return "docker.io" if first in DOCKER_HUB_HOSTS else first
    return "docker.io"


def registry_entry(host: str) -> str | None:
    """The REGISTRIES key that covers `host`, or None."""
    if host in REGISTRIES:
        return host
    return next((key for key in REGISTRIES if "*" in key and fnmatch.fnmatchcase(host, key)), None)


def s3_bucket_patterns() -> list[str]:
    """Every bucket pattern any registry redirects to, sorted, without repeats."""
    return sorted({bucket for entry in REGISTRIES.values() for bucket in entry.s3_buckets})
