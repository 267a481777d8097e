"""How long a terminating vLLM pod keeps serving, derived from the version's longest request.

Order of events when a pod is deleted (scale-in, rollout, node drain):

1. The pod leaves the Service endpoints; the AWS Load Balancer Controller deregisters it and the
   ALB stops sending it new requests. Meanwhile the preStop hook (pre_stop_drain.py) keeps the
   server untouched for at least PROPAGATION_SECONDS, then waits while /metrics reports running
   or waiting requests, returning when there are none or at `pre_stop_deadline`.
2. The kubelet sends SIGTERM. vLLM's own drain (`--shutdown-timeout`, v0.33.0) rejects new work
   and lets requests still in flight finish for up to `engine_shutdown_timeout`: the backstop
   for a request that arrived late or a preStop hook that failed.
3. Engine teardown (GPU memory, NCCL, worker processes), then exit; SIGKILL at the grace period.

The ALB keeps in-flight connections to a draining target for the deregistration delay (and ends
deregistration early once none are left), so that delay must cover the whole grace period.
"""

from __future__ import annotations

from dataclasses import dataclass

# Endpoint removal -> controller -> ALB target deregistration takes seconds, not minutes.
PROPAGATION_SECONDS = 15
# Freeing GPU memory and stopping worker processes after the last request.
TEARDOWN_SECONDS = 30
# Target group attribute limit (deregistration_delay.timeout_seconds: 0-3600).
MAX_DEREGISTRATION_DELAY_SECONDS = 3600


@dataclass(frozen=True)
class ShutdownTiming:
    pre_stop_min_wait: int
    pre_stop_deadline: int
    engine_shutdown_timeout: int
    termination_grace_period: int

    @property
    def deregistration_delay(self) -> int:
        return self.termination_grace_period


def shutdown_timing(max_request_seconds: int) -> ShutdownTiming:
    """The budget of one model version; config bounds max_request_seconds to 10..3000."""
    deadline = PROPAGATION_SECONDS + max_request_seconds
    timing = ShutdownTiming(
        pre_stop_min_wait=PROPAGATION_SECONDS,
        pre_stop_deadline=deadline,
        engine_shutdown_timeout=max_request_seconds,
        termination_grace_period=deadline + TEARDOWN_SECONDS,
    )
    assert timing.deregistration_delay <= MAX_DEREGISTRATION_DELAY_SECONDS
    return timing
