"""One snapshot per chart per stage (the GitOps export's YAML content), so every manifest change
is visible in review. Update on purpose with `make snapshots` and read the diff."""

from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from tests.synth import SynthResult
from tools.gitops_export import stage_manifests


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def test_chart_manifests_match_snapshots(
    synth: SynthResult, stage: str, snapshot_json: SnapshotAssertion
) -> None:
    for chart, manifests in stage_manifests(synth.configs[stage]).items():
        assert manifests == snapshot_json(name=chart)
