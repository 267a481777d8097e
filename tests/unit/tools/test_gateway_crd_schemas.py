"""tests/schemas/ has a schema for each CRD tools/gateway_crd_schemas.py lists, naming its pinned source."""

from __future__ import annotations

import json

from constructs_lib.addons import envoy_gateway
from tests.compliance.test_k8s_schemas import CUSTOM_RESOURCE_SCHEMAS
from tools.gateway_crd_schemas import CRDS, SCHEMAS


def test_each_schema_names_its_pinned_release_and_is_used() -> None:
    used = {path.name for path in CUSTOM_RESOURCE_SCHEMAS.values()}
    for source in CRDS:
        comment = json.loads((SCHEMAS / source.out).read_text())["$comment"]
        assert f"github.com/{source.repository}/blob/{source.ref}/{source.path}" in comment
        assert source.out in used
    # The schemas come from the releases the add-on installs.
    assert {source.ref for source in CRDS} == {envoy_gateway.VERSION, envoy_gateway.AI_GATEWAY_VERSION}
