"""Lambda entry point: EC2 Spot interruption warnings and rebalance recommendations.

Rejected events (malformed, unexpected, stale) return without any Kubernetes call: retrying
them cannot help. AWS and Kubernetes API failures are raised, so EventBridge retries the event
and finally sends it to the dead-letter queue.
"""

from __future__ import annotations

import os
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from contract.telemetry import (
    METRICS_NAMESPACE,
    METRICS_NAMESPACE_ENV,
    REJECTED_EVENTS_METRIC,
    SPOT_INTERRUPTION_SERVICE,
    pods_metric,
)
from lambdas.common.clients import aws_client, k8s_client
from lambdas.common.settings import SettingsError
from lambdas.spot_interruption.events import EventRejected, parse_event
from lambdas.spot_interruption.respond import choose_action, respond
from lambdas.spot_interruption.settings import SpotSettings

SERVICE = SPOT_INTERRUPTION_SERVICE
logger = Logger(service=SERVICE)
# Powertools lets an explicit namespace win over the variable: read it here, default ours.
metrics = Metrics(namespace=os.environ.get(METRICS_NAMESPACE_ENV, METRICS_NAMESPACE), service=SERVICE)
tracer = Tracer(service=SERVICE)


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        settings = SpotSettings.from_env(os.environ)
    except SettingsError as exc:
        logger.error("invalid configuration", extra={"cause": str(exc)})
        metrics.add_metric(name="ConfigErrors", unit=MetricUnit.Count, value=1)
        raise
    try:
        spot = parse_event(event, now=time.time(), safety_seconds=settings.safety_seconds)
    except EventRejected as exc:
        logger.error(
            "event rejected",
            extra={"reason": exc.reason, "cause": str(exc), "event_id": _event_id(event)},
        )
        metrics.add_metric(name=REJECTED_EVENTS_METRIC, unit=MetricUnit.Count, value=1)
        return {"status": "rejected", "reason": exc.reason, "message": str(exc)}

    logger.append_keys(event_id=spot.event_id, instance_id=spot.instance_id, kind=spot.kind)
    action = choose_action(spot, settings.rebalance_action)
    try:
        summary = respond(
            spot,
            action,
            ec2=aws_client("ec2"),
            k8s=k8s_client(settings.cluster),
            concurrency=settings.concurrency,
            safety_seconds=settings.safety_seconds,
            lambda_end=time.time() + context.get_remaining_time_in_millis() / 1000,
        )
    except Exception as exc:
        # Throttling, 401/403, unreachable endpoint...: keep the event (retry, then DLQ).
        logger.exception("API failure; the event will be retried", extra={"cause": repr(exc)})
        metrics.add_metric(name="ApiFailures", unit=MetricUnit.Count, value=1)
        raise

    result = summary.as_dict()
    logger.append_keys(node_name=summary.node)
    logger.info("summary", extra={"summary": result})
    _emit(summary.status, result)
    return result


def _emit(status: str, result: dict[str, Any]) -> None:
    metrics.add_metric(name=f"Events_{status}", unit=MetricUnit.Count, value=1)
    for name in ("evicted", "already_gone", "failed", "pending", "skipped"):
        metrics.add_metric(name=pods_metric(name), unit=MetricUnit.Count, value=result[name])
    metrics.add_metric(name="SecondsUsed", unit=MetricUnit.Seconds, value=result["seconds_used"])


def _event_id(event: Any) -> str:
    return str(event.get("id", "")) if isinstance(event, dict) else ""
