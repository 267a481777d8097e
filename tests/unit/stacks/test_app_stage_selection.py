"""`-c stage=<name>` (make synth STAGE=<name>) makes app.py build that stage alone and no pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

import app as app_module
from config import ConfigError, load_stages


def test_no_selection_keeps_every_stage() -> None:
    stages = load_stages()
    assert app_module.select_stages(stages, None) == stages


def test_a_selected_stage_is_the_only_one() -> None:
    stages = load_stages()
    assert list(app_module.select_stages(stages, "staging")) == ["staging"]
    assert app_module.select_stages(stages, "staging")["staging"] is stages["staging"]


def test_an_unknown_stage_names_the_context_key_and_the_allowed_stages() -> None:
    with pytest.raises(ConfigError) as raised:
        app_module.select_stages(load_stages(), "qa")
    assert str(raised.value) == (
        "-c stage=qa: no such stage; allowed: dev, staging, prod (one per config/<stage>.yaml)"
    )


def run_main(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, context: dict[str, str]) -> dict[str, Any]:
    """main() with `context` as given by `cdk -c`, recording what it asks build_app for. (The CLI passes
    context in the environment of the jsii process, which started before this test, so the App is
    created with it instead.)"""
    built: dict[str, Any] = {}
    cli_app = cdk.App

    def record(app: cdk.App, stages: dict[str, Any], *, pipeline: Any = None) -> dict[str, Any]:
        built.update(stages=list(stages), pipeline=pipeline)
        return {}

    monkeypatch.setattr(cdk, "App", lambda: cli_app(context=context, outdir=str(tmp_path)))
    monkeypatch.setattr(app_module, "build_app", record)
    app_module.main()
    return built


def test_main_builds_only_the_stage_given_by_context(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    built = run_main(monkeypatch, tmp_path, {"stage": "dev"})
    assert built == {"stages": ["dev"], "pipeline": None}


def test_main_builds_every_stage_and_the_pipeline_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built = run_main(monkeypatch, tmp_path, {})
    assert built["stages"] == ["dev", "staging", "prod"]
    assert built["pipeline"] is not None


def test_main_stops_on_an_unknown_stage(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        run_main(monkeypatch, tmp_path, {"stage": "qa"})
    assert exited.value.code == 1
    assert "-c stage=qa: no such stage; allowed: dev, staging, prod" in capsys.readouterr().err
