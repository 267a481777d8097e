"""Where nodes pull public images from: the one place that maps an upstream image to the stage's cache.

With the stage's ECR pull-through cache rule for Docker Hub (constructs_lib/image_cache.py), the
image ``vllm/vllm-openai:v1`` is pulled as
``<account>.dkr.ecr.<region>.amazonaws.com/docker-hub/vllm/vllm-openai:v1``.
Docker Hub's official images live under ``library/`` (``nginx`` -> ``library/nginx``).
"""

from __future__ import annotations

DOCKER_HUB_HOSTS = ("docker.io", "registry-1.docker.io", "index.docker.io")
DOCKER_HUB_CACHE_PREFIX = "docker-hub"
"""ECR repository prefix of the Docker Hub pull-through cache rule (2-30 characters, ECR API)."""


def docker_hub_mirror(*, account: str, region: str, url_suffix: str) -> str:
    """The cache's image prefix in a stage's private registry."""
    return f"{account}.dkr.ecr.{region}.{url_suffix}/{DOCKER_HUB_CACHE_PREFIX}"


def _is_registry(part: str) -> bool:
    return "." in part or ":" in part or part == "localhost"


def docker_hub_image(reference: str, *, mirror: str) -> str:
    """`reference` (a Docker Hub image, with or without ``docker.io/``) as pulled through `mirror`.

    An empty `mirror` (no cache configured) returns `reference` unchanged. A reference to another
    registry is an error: only Docker Hub is cached.
    """
    first, _, rest = reference.partition("/")
    if rest and _is_registry(first):
        if first not in DOCKER_HUB_HOSTS:
            raise ValueError(f"{reference!r} is not a Docker Hub image; only Docker Hub images are cached")
        path = rest
    else:
        path = reference
    if not mirror:
        return reference
    if "/" not in path.split(":", 1)[0].split("@", 1)[0]:
        path = f"library/{path}"
    return f"{mirror}/{path}"
