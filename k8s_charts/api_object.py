"""Plain Kubernetes objects for kinds cdk8s-plus does not model (PDB, NetworkPolicy, CRDs)."""

from __future__ import annotations

from typing import Any

import cdk8s
from constructs import Construct


def api_object(
    scope: Construct,
    id_: str,
    *,
    api_version: str,
    kind: str,
    metadata: cdk8s.ApiObjectMetadata,
    spec: dict[str, Any],
) -> cdk8s.ApiObject:
    """An ApiObject with a `spec` (the Python binding has no catch-all props for it)."""
    obj = cdk8s.ApiObject(scope, id_, api_version=api_version, kind=kind, metadata=metadata)
    obj.add_json_patch(cdk8s.JsonPatch.add("/spec", spec))
    return obj
