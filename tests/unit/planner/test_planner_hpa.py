"""The HPA computation against the Kubernetes documentation's worked examples and the controller code."""

from __future__ import annotations

import pytest

from planner.hpa import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    HpaSpec,
    HpaState,
    Policy,
    Rules,
    external_average_value_replicas,
    next_replicas,
    pods_average_replicas,
)


def test_docs_ratio_example_doubles_and_halves() -> None:
    # HPA docs, "Algorithm details": current 200m, target 100m -> replicas double; 50m -> halve.
    assert pods_average_replicas(3, [200, 200, 200], 100) == 6
    assert pods_average_replicas(4, [50, 50, 50, 50], 100) == 2


def test_tolerance_of_ten_percent_keeps_the_count() -> None:
    # Ratio 1.075 is inside the default 0.1 tolerance; 1.125 is outside. (Exactly 1.1 falls outside in
    # float64, in Go as in Python, so the boundary itself is not asserted.)
    assert external_average_value_replicas(10, total=43, target_per_pod=4) == 10
    assert external_average_value_replicas(10, total=45, target_per_pod=4) == 12
    assert pods_average_replicas(10, [0.91] * 10, 1.0) == 10
    assert pods_average_replicas(10, [0.89] * 10, 1.0) == 9


def test_external_average_value_is_total_over_target() -> None:
    assert external_average_value_replicas(2, total=30, target_per_pod=5) == 6
    assert external_average_value_replicas(6, total=0, target_per_pod=5) == 0  # bounds are applied later


def test_missing_pods_are_assumed_at_target_when_scaling_down() -> None:
    # Two reporting pods at half the target, two starting: (0.5 + 0.5 + 1 + 1) / 4 = 0.75 -> 3.
    assert pods_average_replicas(4, [0.5, 0.5], 1.0, missing_pods=2) == 3
    # Scaling up, missing pods count as zero: (2 + 2 + 0) / 3 = 1.33 -> 4.
    assert pods_average_replicas(3, [2.0, 2.0], 1.0, missing_pods=1) == 4


def test_docs_scale_down_policies_example() -> None:
    # HPA docs, "Scaling Policies": Pods 4 and Percent 10 per 60 s, 80 replicas heading to 10:
    # 8 removed first; at 72 replicas 10 % is 7.2, rounded up to 8 removed.
    rules = Rules(0, "Max", (Policy("Pods", 4, 60), Policy("Percent", 10, 60)))
    spec = HpaSpec(1, 100, DEFAULT_SCALE_UP, rules)
    state = HpaState()
    assert next_replicas(10, 80, 0, spec, state) == 72
    assert next_replicas(10, 72, 30, spec, state) == 72  # still inside the 60 s period
    assert next_replicas(10, 72, 61, spec, state) == 64
    # With 40 replicas or fewer the Pods policy allows the bigger change.
    assert next_replicas(10, 30, 500, spec, HpaState()) == 26


def test_select_policy_min_and_disabled() -> None:
    rules_min = Rules(0, "Min", (Policy("Pods", 4, 60), Policy("Percent", 10, 60)))
    assert next_replicas(10, 80, 0, HpaSpec(1, 100, DEFAULT_SCALE_UP, rules_min), HpaState()) == 76
    disabled = Rules(0, "Disabled", (Policy("Pods", 4, 60),))
    assert next_replicas(10, 80, 0, HpaSpec(1, 100, DEFAULT_SCALE_UP, disabled), HpaState()) == 80


def test_default_scale_up_is_four_pods_or_double_per_fifteen_seconds() -> None:
    spec = HpaSpec(1, 100)
    state = HpaState()
    assert next_replicas(50, 1, 0, spec, state) == 5  # max(1 + 4, 2 * 1)
    assert next_replicas(50, 5, 10, spec, state) == 5  # the period started at 1 replica
    assert next_replicas(50, 5, 16, spec, state) == 10  # new period: max(5 + 4, 10)


def test_scale_down_stabilisation_window_uses_the_highest_recent_recommendation() -> None:
    # HPA docs, "Stabilization window": scale-down uses the highest recommendation of the last 300 s.
    spec = HpaSpec(1, 100, DEFAULT_SCALE_UP, DEFAULT_SCALE_DOWN)
    state = HpaState()
    assert next_replicas(10, 10, 0, spec, state) == 10
    assert next_replicas(8, 10, 100, spec, state) == 10
    assert next_replicas(6, 10, 200, spec, state) == 10
    assert next_replicas(6, 10, 301, spec, state) == 8  # the 10 at t=0 left the window
    assert next_replicas(6, 8, 401, spec, state) == 6


def test_scale_up_stabilisation_window_uses_the_lowest_recent_recommendation() -> None:
    up = Rules(60, "Max", (Policy("Percent", 100, 15),))
    spec = HpaSpec(1, 100, up, DEFAULT_SCALE_DOWN)
    state = HpaState()
    assert next_replicas(2, 2, 0, spec, state) == 2
    assert next_replicas(8, 2, 30, spec, state) == 2  # the 2 at t=0 is still in the window
    assert next_replicas(8, 2, 61, spec, state) == 4  # then doubling per 15 s limits the step


@pytest.mark.parametrize(("proposal", "expected"), [(0, 2), (1, 2), (50, 6)])
def test_min_and_max_bound_the_result(proposal: int, expected: int) -> None:
    rules = Rules(0, "Max", (Policy("Pods", 100, 15),))
    assert next_replicas(proposal, 3, 0, HpaSpec(2, 6, rules, rules), HpaState()) == expected
