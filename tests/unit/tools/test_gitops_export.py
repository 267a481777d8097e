"""The GitOps export equals what CloudFormation applies, apart from CDK's prune labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from contract.serving import PLACEHOLDERS, STAGE_VALUES_CONFIG_MAP
from tests.synth import SynthResult
from tests.templates import all_applied_manifests, applied_charts
from tools.gitops_export import export_values, stage_manifests, write_stage


def stage_values(synth: SynthResult, stage: str) -> dict[str, str]:
    """The rendered data of the serving-stage-values ConfigMap the stack applies."""
    (config_map,) = [
        item
        for item in all_applied_manifests(synth, stage)
        if item["kind"] == "ConfigMap" and item["metadata"]["name"] == STAGE_VALUES_CONFIG_MAP
    ]
    data: dict[str, str] = config_map["data"]
    return data


def substituted(manifests: Any, values: dict[str, str]) -> Any:
    """What Flux post-build substitution makes of the export, given the ConfigMap's values."""
    text = json.dumps(manifests)
    for key, value in values.items():
        text = text.replace(f"${{{key}}}", value)
    return json.loads(text)


def test_export_equals_the_applied_manifests(synth: SynthResult, stage: str) -> None:
    exported = stage_manifests(synth.configs[stage])
    applied = applied_charts(synth, stage)
    assert list(exported) == list(applied)
    assert substituted(exported, stage_values(synth, stage)) == applied


def test_every_placeholder_has_a_value_in_the_config_map(synth: SynthResult, stage: str) -> None:
    values = stage_values(synth, stage)
    placeholders = [getattr(PLACEHOLDERS, field) for field in PLACEHOLDERS.__dataclass_fields__]
    assert sorted(f"${{{key}}}" for key in values) == sorted(placeholders)
    text = json.dumps(substituted(stage_manifests(synth.configs[stage]), values))
    assert "${" not in text


def test_region_is_literal_when_the_stage_pins_it(synth: SynthResult, stage: str) -> None:
    config = synth.configs[stage]
    assert export_values(config).region == config.region
    assert stage_values(synth, stage)["AWS_REGION"] == config.region


def test_one_yaml_file_per_chart_in_apply_order(synth: SynthResult, stage: str, tmp_path: Path) -> None:
    config = synth.configs[stage]
    paths = write_stage(config, tmp_path)
    expected = stage_manifests(config)
    assert [path.name for path in paths] == [
        f"{index:02d}-{name}.yaml" for index, name in enumerate(expected)
    ]
    assert paths[0].name == "00-models-namespace.yaml"
    for path, manifests in zip(paths, expected.values(), strict=True):
        assert list(yaml.safe_load_all(path.read_text())) == manifests
