"""The shutdown budget keeps its order and the ALB's limit across the whole allowed config range."""

from __future__ import annotations

import pytest

from config.serving import ModelVersion
from k8s_charts.shutdown import MAX_DEREGISTRATION_DELAY_SECONDS, PROPAGATION_SECONDS, shutdown_timing

LOWEST, HIGHEST = (
    ModelVersion.model_fields["max_request_seconds"].metadata[0].ge,
    ModelVersion.model_fields["max_request_seconds"].metadata[1].le,
)


@pytest.mark.parametrize("max_request", [LOWEST, 120, 300, HIGHEST])
def test_order_and_limits(max_request: int) -> None:
    timing = shutdown_timing(max_request)
    assert timing.pre_stop_min_wait == PROPAGATION_SECONDS
    # The hook gives running requests the whole budget after the propagation wait ...
    assert timing.pre_stop_deadline - timing.pre_stop_min_wait == max_request
    # ... vLLM's own drain gets the same budget as a backstop ...
    assert timing.engine_shutdown_timeout == max_request
    # ... and the kubelet waits longer than the hook, the ALB at least as long as the kubelet.
    assert timing.pre_stop_min_wait < timing.pre_stop_deadline < timing.termination_grace_period
    assert timing.deregistration_delay >= timing.termination_grace_period
    assert timing.deregistration_delay <= MAX_DEREGISTRATION_DELAY_SECONDS
