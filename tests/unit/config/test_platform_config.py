"""Platform fields: pinned EKS add-on versions and alert settings fail with actionable messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from config import load_stages
from config.cluster import REQUIRED_ADDONS
from tests.unit.config.test_stage_config import assert_rejected_naming


def _addons(data: dict[str, Any]) -> dict[str, str]:
    addons: dict[str, str] = data["cluster"]["addon_versions"]
    return addons


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda d: d["cluster"].pop("addon_versions"),
            ["cluster.addon_versions", "required but missing; add `addon_versions:` here"],
            id="addon-versions-missing",
        ),
        pytest.param(
            lambda d: _addons(d).pop("coredns"),
            ["cluster.addon_versions", "missing add-on versions ['coredns']", "describe-addon-versions"],
            id="one-addon-missing",
        ),
        pytest.param(
            lambda d: _addons(d).update({"metrics-server": "v0.8.0-eksbuild.1"}),
            ["cluster.addon_versions", "unknown add-ons ['metrics-server']", "allowed: vpc-cni"],
            id="unknown-addon",
        ),
        pytest.param(
            lambda d: _addons(d).update({"vpc-cni": "latest"}),
            ["cluster.addon_versions", "vpc-cni version 'latest'", "v1.2.3-eksbuild.4"],
            id="unpinned-addon-version",
        ),
        pytest.param(
            lambda d: _addons(d).update({"kube-proxy": "v1.35.0-eksbuild.1"}),
            ["kube-proxy 'v1.35.0-eksbuild.1' does not match kubernetes_version 1.36"],
            id="kube-proxy-other-minor",
        ),
        pytest.param(
            lambda d: d["observability"].update(runbook_base_url="http://wiki/runbooks#alerts"),
            ["observability.runbook_base_url", "not an https URL without a fragment"],
            id="runbook-url-not-https",
        ),
        pytest.param(
            lambda d: d["observability"].update(pager_subscriptions=["http://pager.example/hook"]),
            ["observability.pager_subscriptions", "neither https:// endpoints nor e-mail addresses"],
            id="pager-endpoint-not-https",
        ),
        pytest.param(
            lambda d: d["observability"].update(alert_queue_depth_factor=0.5),
            ["observability.alert_queue_depth_factor", "greater than or equal to 1"],
            id="queue-factor-below-target",
        ),
        pytest.param(
            lambda d: d["observability"].update(alert_spot_interruptions_per_hour=0),
            ["observability.alert_spot_interruptions_per_hour", "greater than or equal to 1"],
            id="spot-threshold-zero",
        ),
    ],
)
def test_bad_platform_config_is_rejected(
    mutate: Callable[[dict[str, Any]], Any], expected: list[str]
) -> None:
    assert_rejected_naming(mutate, expected)


def test_every_stage_pins_every_required_addon() -> None:
    for config in load_stages().values():
        assert set(config.cluster.addon_versions) == set(REQUIRED_ADDONS)
