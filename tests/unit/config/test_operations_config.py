"""Spot and off-hours settings: defaults, derived values, and each bad value named with what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from config.operations import OffHoursConfig, SpotConfig
from tests.unit.config.test_stage_config import assert_rejected_naming


def test_spot_function_defaults_fit_the_two_minute_notice() -> None:
    spot = SpotConfig()
    assert spot.function_timeout_seconds == 130
    assert spot.reserved_concurrency == 10


@pytest.mark.parametrize(
    ("down", "up", "hours"),
    [
        ("0 19 ? * MON-FRI *", "0 7 ? * MON-FRI *", 12.0),
        ("0 23 ? * * *", "0 6 ? * * *", 7.0),
        ("30 22 ? * * *", "0 6 ? * * *", 7.5),
        ("0 1 ? * * *", "0 5 ? * * *", 4.0),
        ("0/30 19 ? * * *", "0 7 ? * * *", None),
        ("0 19,20 ? * * *", "0 7 ? * * *", None),
    ],
)
def test_hours_off_per_night_is_derived_from_fixed_time_crons(
    down: str, up: str, hours: float | None
) -> None:
    assert OffHoursConfig(scale_down_cron=down, scale_up_cron=up).hours_off_per_night == hours


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda d: d["spot"].update(function_timeout_seconds=120),
            ["spot.function_timeout_seconds", "greater than 120", "(got 120)"],
            id="spot-timeout-not-over-the-notice",
        ),
        pytest.param(
            lambda d: d["spot"].update(function_timeout_seconds=301),
            ["spot.function_timeout_seconds", "less than or equal to 300", "(got 301)"],
            id="spot-timeout-too-long",
        ),
        pytest.param(
            lambda d: d["spot"].update(reserved_concurrency=0),
            ["spot.reserved_concurrency", "greater than or equal to 1", "(got 0)"],
            id="spot-concurrency-zero",
        ),
        pytest.param(
            lambda d: d["spot"].update(reserved_concurrency=101),
            ["spot.reserved_concurrency", "less than or equal to 100", "(got 101)"],
            id="spot-concurrency-too-high",
        ),
        pytest.param(
            lambda d: d["spot"].update(rebalance_action="terminate"),
            ["spot.rebalance_action", "'ignore', 'cordon' or 'drain'", "'terminate'"],
            id="unknown-rebalance-action",
        ),
        pytest.param(
            lambda d: d["offhours"].update(models=[], node_groups=[]),
            ["offhours", "nothing to scale", "allowed:"],
            id="offhours-empty-scope",
        ),
        pytest.param(
            lambda d: d["offhours"].update(timezone="Mars/Olympus"),
            ["offhours.timezone", "'Mars/Olympus' is not an IANA time zone", "allowed:"],
            id="offhours-bad-timezone",
        ),
        pytest.param(
            lambda d: d["offhours"].update(scale_down_cron="0 19 * * MON-FRI *"),
            ["offhours.scale_down_cron", "exactly one of day-of-month and day-of-week must be '?'"],
            id="offhours-bad-cron",
        ),
        pytest.param(
            lambda d: d["offhours"].update(scale_up_cron="30 2 ? * MON-FRI *"),
            [
                "offhours",
                "scale_up_cron '30 2 ? * MON-FRI *'",
                "local 02:30 does not exist on 2026-03-29 in Europe/Berlin (skipped run)",
                "allowed:",
            ],
            id="offhours-run-in-the-spring-forward-gap",
        ),
        pytest.param(
            lambda d: d["offhours"].update(node_groups=["h100-spot"]),
            ["offhours.node_groups: 'h100-spot' is not a GPU node group", "allowed: ['a10g-spot']"],
            id="offhours-unknown-node-group",
        ),
    ],
)
def test_bad_operations_config_is_named(mutate: Any, expected: list[str]) -> None:
    assert_rejected_naming(mutate, expected)


def test_empty_scope_is_fine_while_offhours_is_disabled() -> None:
    assert OffHoursConfig(enabled=False, models=[], node_groups=[]).models == []


def test_a_repeated_local_time_or_a_zone_without_dst_is_fine() -> None:
    assert OffHoursConfig(timezone="America/New_York", scale_down_cron="30 1 ? * * *").scale_down_cron
    assert OffHoursConfig(timezone="UTC", scale_up_cron="30 2 ? * * *").scale_up_cron
