"""A snapshot of the pipeline stack, so every change to the delivery pipeline is visible in review.

Its stages are not snapshotted again: tests/unit/stacks/test_pipeline_stack.py proves they synthesise
the same resources as the hand-deployed stages snapshotted in test_stack_snapshots.py.
"""

from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from tests.snapshot.test_stack_snapshots import normalised
from tests.synth import PipelineSynthResult


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def test_pipeline_template_matches_snapshot(
    pipeline_synth: PipelineSynthResult, snapshot_json: SnapshotAssertion
) -> None:
    assert normalised(pipeline_synth.pipeline_template) == snapshot_json(name="Pipeline")
    for name, template in sorted(pipeline_synth.support_templates.items()):
        assert normalised(template) == snapshot_json(name=name)
