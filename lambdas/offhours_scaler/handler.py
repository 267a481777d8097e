"""Lambda entry point: the off-hours scaler, invoked by EventBridge Scheduler.

A bad event is rejected without any change. A run with a failed item is logged and reported,
then raised, so Scheduler retries it (every step is idempotent) and finally dead-letters it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from contract.telemetry import (
    METRICS_NAMESPACE,
    METRICS_NAMESPACE_ENV,
    MODELS_NOT_READY_METRIC,
    OFFHOURS_SCALER_SERVICE,
    REJECTED_EVENTS_METRIC,
)
from lambdas.common.clients import aws_client, k8s_client
from lambdas.common.retry import Deadline
from lambdas.common.settings import SettingsError
from lambdas.offhours_scaler import ready_check
from lambdas.offhours_scaler.events import EventRejected, parse_action
from lambdas.offhours_scaler.records import Change
from lambdas.offhours_scaler.run import run
from lambdas.offhours_scaler.settings import ScalerSettings

SERVICE = OFFHOURS_SCALER_SERVICE
logger = Logger(service=SERVICE)
# Powertools lets an explicit namespace win over the variable: read it here, default ours.
metrics = Metrics(namespace=os.environ.get(METRICS_NAMESPACE_ENV, METRICS_NAMESPACE), service=SERVICE)
tracer = Tracer(service=SERVICE)


class ScalingIncompleteError(RuntimeError):
    """Some Deployments or node groups were not scaled; the summary says which."""


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    started = time.monotonic()
    try:
        settings = ScalerSettings.from_env(os.environ)
    except SettingsError as exc:
        logger.error("invalid configuration", extra={"cause": str(exc)})
        metrics.add_metric(name="ConfigErrors", unit=MetricUnit.Count, value=1)
        raise
    try:
        action = parse_action(event)
    except EventRejected as exc:
        logger.error("event rejected", extra={"cause": str(exc), "event": _safe(event)})
        metrics.add_metric(name=REJECTED_EVENTS_METRIC, unit=MetricUnit.Count, value=1)
        return {"status": "rejected", "message": str(exc)}

    logger.append_keys(action=action, cluster=settings.cluster.name)
    summary = run(
        action,
        settings,
        k8s=k8s_client(settings.cluster),
        eks=aws_client("eks"),
        book_ready_check=_ready_check_booker(settings, context),
        # Stop retrying busy node groups in time to log the summary before the timeout.
        deadline=Deadline(
            min(
                time.time() + settings.retry_seconds,
                time.time() + context.get_remaining_time_in_millis() / 1000 - 10,
            )
        ),
    )
    summary.seconds_used = time.monotonic() - started
    result = summary.as_dict()
    logger.info("summary", extra={"summary": result})
    for change in summary.changes:
        if change.result == "failed":
            logger.error("not scaled", extra={"change": change.as_dict()})
    if action == "check_ready":
        for item in summary.readiness:
            if not item.ok:
                logger.error("model not ready after scale-up", extra={"readiness": item.as_dict()})
        # The alarm on this metric is the point of the check; a not-ready model is no retry case.
        metrics.add_metric(name=MODELS_NOT_READY_METRIC, unit=MetricUnit.Count, value=len(summary.not_ready))
        return result
    metrics.add_metric(name=f"Changed_{action}", unit=MetricUnit.Count, value=result["changed"])
    metrics.add_metric(name="Failed", unit=MetricUnit.Count, value=result["failed"])
    if action == "scale_down":
        metrics.add_metric(
            name="GpuNodeHoursSaved", unit=MetricUnit.Count, value=summary.gpu_node_hours_saved
        )
    if summary.failed:
        raise ScalingIncompleteError(f"{summary.failed} item(s) not scaled; see the summary log line")
    return result


def _ready_check_booker(settings: ScalerSettings, context: LambdaContext) -> Callable[[], Change] | None:
    """Books this function's readiness check; None when READY_CHECK_MINUTES is off."""
    check = settings.ready_check
    if check is None:
        return None
    return lambda: ready_check.book(
        aws_client("scheduler"), check, function_arn=context.invoked_function_arn, now=datetime.now(UTC)
    )


def _safe(event: Any) -> Any:
    return event if isinstance(event, dict | list | str | int | float | None) else repr(event)
