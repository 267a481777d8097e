"""One snapshot per stack per stage, so every template change is visible in review.

Update on purpose with `make snapshots` (pytest --snapshot-update) and read the diff.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from tests.synth import SynthResult

ASSET_HASH = re.compile(r"[0-9a-f]{64}")
# CDK Pipelines' publish steps name each destination "<asset hash>:<account>-<region>-<8 hex>",
# where the suffix also changes with the asset's content.
ASSET_DESTINATION = re.compile(r"(<asset-hash>:[\w-]+?-)[0-9a-f]{8}\b")


def normalised(template: dict[str, Any]) -> Any:
    """The template with asset hashes replaced, so code edits show as code diffs, not hash churn."""
    text = ASSET_HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True))
    return json.loads(ASSET_DESTINATION.sub(r"\1<destination>", text))


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def test_stack_templates_match_snapshots(
    synth: SynthResult, stage: str, snapshot_json: SnapshotAssertion
) -> None:
    for stack, template in sorted(synth.templates[stage].items()):
        assert normalised(template) == snapshot_json(name=stack)
