"""Idle and keep-alive timeouts of the path ALB -> model server (the charts' own values)."""

from __future__ import annotations

# The shutdown budget of a model version (preStop, vLLM's drain, grace period, ALB
# deregistration delay) is derived from its max_request_seconds: k8s_charts/shutdown.py.

# Streamed completions of long prompts can stay silent for minutes before the first token.
ALB_IDLE_TIMEOUT_SECONDS = 300
# The target must never close a kept-alive connection before the ALB does, or the ALB sends a
# request into a closing socket and answers 502 (ALB docs: target keep-alive > idle timeout).
SERVER_KEEP_ALIVE_SECONDS = ALB_IDLE_TIMEOUT_SECONDS + 10
