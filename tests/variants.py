"""Stage configs no shipped file has: a shipped stage with one setting changed, validated like a file.

Every shipped stage with models routes by the request's `model` (staging, prod) or by header (dev), so
host routing, which a stage with a domain could still choose, is tested on a copy of prod that asks
for it. The copy goes through the loader like a file, so every stage-level rule still applies.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml

from config import StageConfig, parse_stage
from config.loader import read_cdk_context

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"

RoutingMode = Literal["host", "header", "model"]


def shipped_data(stage: str) -> dict[str, Any]:
    """config/<stage>.yaml as parsed YAML, a fresh copy to edit."""
    data: dict[str, Any] = yaml.safe_load((CONFIG_DIR / f"{stage}.yaml").read_text())
    return copy.deepcopy(data)


def alb_routing(data: dict[str, Any]) -> RoutingMode:
    """The mode in which the ALB itself picks the model: host with a domain, header without."""
    return "host" if data["ingress"].get("domain") else "header"


def with_alb_routing(data: dict[str, Any]) -> dict[str, Any]:
    """The stage data with `ingress.routing` set so the ALB routes (no gateway): see `alb_routing`."""
    data["ingress"]["routing"] = alb_routing(data)
    return data


def routed_by_alb(stage: str) -> StageConfig:
    """The shipped stage, validated again with the ALB routing by host (with a domain) or header."""
    data = with_alb_routing(shipped_data(stage))
    return parse_stage(
        data,
        name=stage,
        source=f"config/{stage}.yaml with ingress.routing {data['ingress']['routing']}",
        cdk_context=read_cdk_context(),
    )
