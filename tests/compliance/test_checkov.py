"""checkov on every synthesised template (stages and pipeline) and every GitOps manifest: each
failed check is acknowledged, with its reason, in tests/compliance/checkov_acknowledged.yaml.

checkov runs from its own environment (.venv-checkov, made by `make install`) with
--skip-download, so it needs no network. About 45 s on two cores for both frameworks.
"""

from __future__ import annotations

import pytest

from tests.synth import PipelineSynthResult, SynthResult
from tools.checkov_scan import FRAMEWORKS, Figures, assess, load_acknowledgements, run_checkov
from tools.gitops_export import write_stage


@pytest.fixture(scope="module")
def checkov_results(
    synth: SynthResult, pipeline_synth: PipelineSynthResult, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Figures], set[object]]:
    dist = tmp_path_factory.mktemp("dist")
    manifests = [path for config in synth.configs.values() for path in write_stage(config, dist)]
    templates = sorted(synth.outdir.glob("assembly-*/*.template.json"))
    templates += sorted(pipeline_synth.outdir.glob("*.template.json"))  # the pipeline, not its stages
    figures, used = assess(run_checkov(templates + manifests), load_acknowledgements())
    return figures, set(used)


def test_checkov_scanned_both_frameworks(checkov_results: tuple[dict[str, Figures], set[object]]) -> None:
    figures, _ = checkov_results
    assert set(figures) == set(FRAMEWORKS)
    for framework, counts in figures.items():
        assert counts.passed > 0, framework


def test_every_failed_check_is_acknowledged(checkov_results: tuple[dict[str, Figures], set[object]]) -> None:
    figures, _ = checkov_results
    missing = [line for counts in figures.values() for line in counts.unacknowledged]
    assert not missing, "failed checkov checks without an acknowledgement:\n" + "\n".join(missing)


def test_every_acknowledgement_is_still_needed(
    checkov_results: tuple[dict[str, Figures], set[object]],
) -> None:
    _, used = checkov_results
    stale = [f"{ack.check} {ack.resources}" for ack in load_acknowledgements() if ack not in used]
    assert not stale, f"acknowledgements that cover no failure any more: {stale}"


def test_every_acknowledgement_has_a_reason() -> None:
    for ack in load_acknowledgements():
        assert len(ack.reason) > 40, ack.check
