"""Build a stage config from dev.yaml with edits, and build its charts in a cdk8s.Testing app.

Read the charts' manifests with tests/templates.py (`chart_manifests`, `of_kind`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import cdk8s
import yaml

from config import StageConfig, parse_stage
from contract.serving import PLACEHOLDERS, StageValues
from k8s_charts.stage_charts import StageCharts, build_stage_charts

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"


def stage_data(stage: str = "dev") -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CONFIG_DIR / f"{stage}.yaml").read_text())
    return copy.deepcopy(data)


def stage_config(data: dict[str, Any], name: str = "dev") -> StageConfig:
    return parse_stage(data, name=name, source=f"config/{name}.yaml")


def charts_for(config: StageConfig, values: StageValues = PLACEHOLDERS) -> StageCharts:
    return build_stage_charts(cdk8s.Testing.app(), config=config, values=values)


def with_engine(**engine: Any) -> StageConfig:
    """dev's model with its engine options replaced by `engine` (max_model_len kept)."""
    data = stage_data()
    version = data["models"][0]["versions"][0]
    version["engine"] = {"max_model_len": version["engine"]["max_model_len"], **engine}
    return stage_config(data)
