"""tools.retained (shown by make destroy) lists exactly the resources CloudFormation keeps."""

from __future__ import annotations

import pytest

from tests.synth import SynthResult
from tools.retained import COST_NOTES, main, retained_resources


def test_every_retained_resource_and_only_those_is_listed(synth: SynthResult, stage: str) -> None:
    expected = sorted(
        (stack, resource["Type"])
        for stack, template in synth.templates[stage].items()
        for resource in template["Resources"].values()
        # RetainExceptOnCreate keeps the resource too, unless the deletion rolls back its own creation.
        if resource.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate")
    )
    listed = sorted((item.stack, item.kind) for item in retained_resources(synth.outdir, stage))
    assert listed == expected
    assert listed, "a stage keeps its keys, buckets and logs"


def test_every_retained_kind_has_a_cost_note(synth: SynthResult, stage: str) -> None:
    kinds = {item.kind for item in retained_resources(synth.outdir, stage)}
    assert kinds <= set(COST_NOTES)


def test_the_model_bucket_is_named_and_its_expiry_shown(
    synth: SynthResult, capsys: pytest.CaptureFixture[str]
) -> None:
    main(synth.outdir, "dev")
    out = capsys.readouterr().out
    # The construct path when synthesised by the CLI (path metadata on), else the logical id.
    (model_bucket,) = [
        line for line in out.splitlines() if "AWS::S3::Bucket" in line and "ModelBucket" in line
    ]
    assert model_bucket.endswith("(objects never expire)")
    assert "fixed part: about $" in out


def test_an_unknown_stage_names_the_synthesised_ones(synth: SynthResult) -> None:
    with pytest.raises(SystemExit) as exited:
        retained_resources(synth.outdir, "qa")
    assert "no stage 'qa'; synthesised: dev, staging, prod" in str(exited.value)
