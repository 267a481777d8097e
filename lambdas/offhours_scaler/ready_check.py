"""The readiness check a scale-up books for itself: one EventBridge Scheduler run, N minutes on.

Booked in the schedule group OpsStack made for it, under one name, so a second scale-up (a retry,
a hand run) moves the one check rather than adding another. Scheduler deletes it once it has run.
Relative to the real restore rather than a fixed cron, a late or hand-run scale-up is checked too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.offhours_scaler.records import Change
from lambdas.offhours_scaler.settings import ReadyCheckSettings

SCHEDULE_NAME = "ready-check"
CHECK_EVENT = {"action": "check_ready"}
# Like the recurring schedules: a late check is still useful for an hour.
MAX_EVENT_AGE_SECONDS = 3600
RETRY_ATTEMPTS = 3


def book(scheduler: Any, settings: ReadyCheckSettings, *, function_arn: str, now: datetime) -> Change:
    at = f"{now.astimezone(UTC) + timedelta(minutes=settings.minutes):%Y-%m-%dT%H:%M:%S}"
    request = {
        "Name": SCHEDULE_NAME,
        "GroupName": settings.schedule_group,
        "Description": f"Readiness check {settings.minutes} min after the last off-hours scale-up",
        "ScheduleExpression": f"at({at})",
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "ActionAfterCompletion": "DELETE",
        "State": "ENABLED",
        "Target": {
            "Arn": function_arn,
            "RoleArn": settings.role_arn,
            "Input": json.dumps(CHECK_EVENT),
            "DeadLetterConfig": {"Arn": settings.dead_letter_arn},
            "RetryPolicy": {
                "MaximumEventAgeInSeconds": MAX_EVENT_AGE_SECONDS,
                "MaximumRetryAttempts": RETRY_ATTEMPTS,
            },
        },
    }
    try:
        try:
            scheduler.create_schedule(**request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConflictException":
                raise
            scheduler.update_schedule(**request)  # booked earlier today: move it
    except (ClientError, BotoCoreError) as exc:
        return Change("schedule", SCHEDULE_NAME, "failed", reason=f"booking the readiness check: {exc}")
    return Change("schedule", SCHEDULE_NAME, "scheduled", after=f"{at}Z", reason="readiness check")
