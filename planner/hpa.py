"""The HorizontalPodAutoscaler algorithm as Kubernetes implements it (autoscaling/v2).

Follows kubernetes/pkg/controller/podautoscaler: replica_calculator.go (ratio to target, tolerance)
and horizontal.go (stabilizeRecommendationWithBehaviors, convertDesiredReplicasWithBehaviorRate,
calculateScaleUpLimitWithScalingRules, calculateScaleDownLimitWithBehaviors).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from mypy_extensions import mypyc_attr

DEFAULT_TOLERANCE = 0.1


@mypyc_attr(native_class=False)  # a plain class when compiled: pickled in SimSetup
@dataclass(frozen=True)
class Policy:
    type: Literal["Pods", "Percent"]
    value: int
    period_seconds: float


@mypyc_attr(native_class=False)  # a plain class when compiled: pickled in SimSetup
@dataclass(frozen=True)
class Rules:
    stabilization_window_seconds: float
    select_policy: Literal["Max", "Min", "Disabled"]
    policies: tuple[Policy, ...]


# Kubernetes defaults (HPA docs, "Default Behavior").
DEFAULT_SCALE_UP = Rules(0, "Max", (Policy("Percent", 100, 15), Policy("Pods", 4, 15)))
DEFAULT_SCALE_DOWN = Rules(300, "Max", (Policy("Percent", 100, 15),))


def external_average_value_replicas(
    current: int, total: float, target_per_pod: float, tolerance: float = DEFAULT_TOLERANCE
) -> int:
    """External metric with an AverageValue target (what KEDA's Prometheus scaler creates).

    GetExternalMetricReplicas: usageRatio = total / (target * currentReplicas); inside the tolerance
    keep currentReplicas, else ceil(total / target).
    """
    usage_ratio = total / (target_per_pod * current)
    if abs(1.0 - usage_ratio) <= tolerance:
        return current
    return math.ceil(total / target_per_pod)


def pods_average_replicas(
    current: int,
    values: Sequence[float],
    target_per_pod: float,
    missing_pods: int = 0,
    tolerance: float = DEFAULT_TOLERANCE,
) -> int:
    """Pods metric with an AverageValue target (calcPlainMetricReplicas).

    usageRatio = mean / target over the pods reporting the metric; inside the tolerance keep
    currentReplicas, else ceil(usageRatio * reporting pods). Pods without a metric yet (starting) are
    assumed at the target when scaling down and at zero when scaling up, and the ratio is recomputed;
    if that flips the direction or lands inside the tolerance, the count stays.
    """
    if not values:
        return current
    usage_ratio = (sum(values) / len(values)) / target_per_pod
    if missing_pods == 0:
        if abs(1.0 - usage_ratio) <= tolerance:
            return current
        return math.ceil(usage_ratio * len(values))
    assumed = target_per_pod if usage_ratio < 1.0 else 0.0
    pods = len(values) + missing_pods
    new_ratio = (sum(values) + assumed * missing_pods) / (target_per_pod * pods)
    if abs(1.0 - new_ratio) <= tolerance or (usage_ratio < 1.0) != (new_ratio < 1.0):
        return current
    proposal = math.ceil(new_ratio * pods)
    if (new_ratio < 1.0 and proposal > current) or (new_ratio > 1.0 and proposal < current):
        return current
    return proposal


@mypyc_attr(native_class=False)  # a plain class when compiled: pickled in SimSetup
@dataclass
class HpaState:
    """What the controller remembers between syncs: recommendations and scale events."""

    recommendations: list[tuple[float, int]] = field(default_factory=list)
    scale_up_events: list[tuple[float, int]] = field(default_factory=list)
    scale_down_events: list[tuple[float, int]] = field(default_factory=list)


def _change_in_period(events: list[tuple[float, int]], now: float, period: float) -> int:
    return sum(change for moment, change in events if moment > now - period)


def scale_up_limit(current: int, now: float, state: HpaState, rules: Rules) -> int:
    if rules.select_policy == "Disabled":
        return current
    limits = []
    for policy in rules.policies:
        added = _change_in_period(state.scale_up_events, now, policy.period_seconds)
        deleted = _change_in_period(state.scale_down_events, now, policy.period_seconds)
        period_start = current - added + deleted
        if policy.type == "Pods":
            limits.append(period_start + policy.value)
        else:
            limits.append(math.ceil(period_start * (1 + policy.value / 100)))
    return min(limits) if rules.select_policy == "Min" else max(limits)


def scale_down_limit(current: int, now: float, state: HpaState, rules: Rules) -> int:
    if rules.select_policy == "Disabled":
        return current
    limits = []
    for policy in rules.policies:
        added = _change_in_period(state.scale_up_events, now, policy.period_seconds)
        deleted = _change_in_period(state.scale_down_events, now, policy.period_seconds)
        period_start = current - added + deleted
        if policy.type == "Pods":
            limits.append(period_start - policy.value)
        else:
            # Go's int32(float64(...)) truncates toward zero.
            limits.append(int(period_start * (1 - policy.value / 100)))
    # "Max" selects the policy allowing the largest change, i.e. the lowest floor.
    return max(limits) if rules.select_policy == "Min" else min(limits)


def stabilise(proposed: int, current: int, now: float, state: HpaState, up: Rules, down: Rules) -> int:
    """Apply both stabilisation windows and record the proposal (stabilizeRecommendationWithBehaviors)."""
    # Every sync of a week's run comes here: comparisons in place of min/max calls (the same result).
    up_since = now - up.stabilization_window_seconds
    down_since = now - down.stabilization_window_seconds
    up_recommendation = proposed
    down_recommendation = proposed
    for moment, value in state.recommendations:
        if moment > up_since and value < up_recommendation:
            up_recommendation = value
        if moment > down_since and value > down_recommendation:
            down_recommendation = value
    recommendation = max(current, up_recommendation)
    recommendation = min(recommendation, down_recommendation)
    since = now - max(up.stabilization_window_seconds, down.stabilization_window_seconds)
    state.recommendations = [entry for entry in state.recommendations if entry[0] > since]
    state.recommendations.append((now, proposed))
    return recommendation


@mypyc_attr(native_class=False)  # a plain class when compiled: pickled in SimSetup
@dataclass(frozen=True)
class HpaSpec:
    min_replicas: int
    max_replicas: int
    scale_up: Rules = DEFAULT_SCALE_UP
    scale_down: Rules = DEFAULT_SCALE_DOWN


def next_replicas(proposed: int, current: int, now: float, spec: HpaSpec, state: HpaState) -> int:
    """One HPA sync from a metric proposal: windows, rate limits, bounds; records the scale event."""
    stabilised = stabilise(proposed, current, now, state, spec.scale_up, spec.scale_down)
    desired = stabilised
    if stabilised > current:
        limit = max(scale_up_limit(current, now, state, spec.scale_up), current)
        desired = min(stabilised, limit, spec.max_replicas)
    elif stabilised < current:
        limit = min(scale_down_limit(current, now, state, spec.scale_down), current)
        desired = max(stabilised, limit, spec.min_replicas)
    # Bounds apply even without a change in this sync (e.g. after min/max were edited).
    desired = min(max(desired, spec.min_replicas), spec.max_replicas)
    _record(state, now, desired - current, spec)
    return desired


def _record(state: HpaState, now: float, change: int, spec: HpaSpec) -> None:
    longest_up = max((p.period_seconds for p in spec.scale_up.policies), default=0)
    longest_down = max((p.period_seconds for p in spec.scale_down.policies), default=0)
    if change > 0:
        state.scale_up_events.append((now, change))
    elif change < 0:
        state.scale_down_events.append((now, -change))
    state.scale_up_events = [(m, c) for m, c in state.scale_up_events if m > now - longest_up]
    state.scale_down_events = [(m, c) for m, c in state.scale_down_events if m > now - longest_down]
