"""Scale EKS managed node groups to the floor and back, recording sizes in a node-group tag.

The record is tagged before the resize, so a failure in between leaves a record equal to the
current size (restoring it changes nothing) rather than a group at the floor with no record.
In the morning the size is restored first and the tag removed last (`forget`), once everything
that depends on it has succeeded (see run.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common.retry import Backoff, Deadline
from lambdas.offhours_scaler.records import KEEP_UP_TAG, RESTORE_TAG, Change, Scaling, is_kept_up

BUSY_STATUSES = ("UPDATING", "CREATING")
LOST_RESPONSE = "update response lost; the group shows the new size"
RETRYABLE_CODES = (
    "ResourceInUseException",
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
)


class BusyError(Exception):
    """The node group cannot be changed right now; try again after a backoff."""


def scale_down(eks: Any, cluster: str, name: str, floor: int) -> Change:
    group = _describe(eks, cluster, name)
    current = Scaling.from_eks(group["scalingConfig"])
    tags = group.get("tags") or {}
    if is_kept_up(tags.get(KEEP_UP_TAG)):
        return _skip(name, current, f"override tag {KEEP_UP_TAG}")
    desired = min(current.desired, floor)
    target = Scaling(min(current.min, desired), desired, max(current.max, 1))
    if RESTORE_TAG in tags:
        # Recorded already. Only a size still equal to the record means the resize after
        # tagging did not happen (a failed run); anything else is ours or the autoscaler's.
        if tags[RESTORE_TAG] != current.encode() or target == current:
            return _skip(name, current, f"already scaled down (recorded {tags[RESTORE_TAG]})")
    elif target == current:
        return _skip(name, current, f"at or below the floor ({floor})")
    else:
        record = {RESTORE_TAG: current.encode()}
        _call(lambda: eks.tag_resource(resourceArn=group["nodegroupArn"], tags=record))
    reason = ""
    try:
        _call(
            lambda: eks.update_nodegroup_config(
                clusterName=cluster, nodegroupName=name, scalingConfig=target.to_eks()
            )
        )
    except (ClientError, BotoCoreError, BusyError):
        # The update may have been applied and only its response lost (botocore then resends
        # it, and EKS answers the resend ResourceInUseException): then the nodes are freed by
        # this run, and counted here (a retry would find the group already down).
        if not _shows(eks, cluster, name, target):
            raise
        reason = LOST_RESPONSE
    freed = current.desired - target.desired
    return Change("nodegroup", name, "scaled", str(current), str(target), reason, nodes_freed=freed)


def scale_up(eks: Any, cluster: str, name: str) -> Change:
    """Restore the recorded size; the tag stays (`Change.record` is the ARN) until `forget`."""
    group = _describe(eks, cluster, name)
    current = Scaling.from_eks(group["scalingConfig"])
    arn = str(group["nodegroupArn"])
    recorded_raw = (group.get("tags") or {}).get(RESTORE_TAG)
    if recorded_raw is None:
        return _skip(name, current, "nothing recorded")
    try:
        recorded = Scaling.decode(recorded_raw)
    except ValueError as exc:
        return Change("nodegroup", name, "failed", str(current), "", str(exc), record=arn)
    # Never lower what runs now: the autoscaler or a person may have raised it at night.
    desired = max(recorded.desired, current.desired)
    target = Scaling(max(recorded.min, current.min), desired, max(recorded.max, current.max, desired))
    if target == current:
        return Change("nodegroup", name, "skipped", str(current), str(target), "already restored", record=arn)
    reason = "" if target == recorded else "kept the higher current size"
    try:
        _call(
            lambda: eks.update_nodegroup_config(
                clusterName=cluster, nodegroupName=name, scalingConfig=target.to_eks()
            )
        )
    except (ClientError, BotoCoreError, BusyError) as exc:
        if not _shows(eks, cluster, name, target):  # else: applied, its response lost
            if isinstance(exc, BusyError):
                raise  # retried in rounds by run_all
            why = _describe_error(exc) if isinstance(exc, ClientError) else str(exc)
            return Change("nodegroup", name, "failed", str(current), str(target), why, record=arn)
        reason = LOST_RESPONSE
    return Change("nodegroup", name, "restored", str(current), str(target), reason, record=arn)


def forget(eks: Any, name: str, arn: str) -> Change:
    """Remove the restore tag, the scale-up's last step for this group (untagging is idempotent)."""
    _call(lambda: eks.untag_resource(resourceArn=arn, tagKeys=[RESTORE_TAG]))
    return Change("nodegroup", name, "forgotten", reason="record removed")


def run_all(
    names: tuple[str, ...],
    operation: Callable[[str], Change],
    deadline: Deadline,
    backoff: Backoff,
) -> list[Change]:
    """Run `operation` on every group; busy ones are retried in rounds while the rest proceed."""
    results: dict[str, Change] = {}
    pending = list(names)
    attempt = 0
    while pending:
        busy: dict[str, str] = {}
        for name in pending:
            try:
                results[name] = operation(name)
            except BusyError as exc:
                busy[name] = str(exc)
            except ClientError as exc:
                results[name] = Change("nodegroup", name, "failed", reason=_describe_error(exc))
            except BotoCoreError as exc:  # no response at all: timeout, connection
                results[name] = Change("nodegroup", name, "failed", reason=str(exc))
        if not busy:
            break
        attempt += 1
        if not deadline.sleep_if_time(backoff.delay(attempt)):
            for name, why in busy.items():
                results[name] = Change(
                    "nodegroup", name, "failed", reason=f"busy after {attempt} attempts: {why}"
                )
            break
        pending = list(busy)
    return [results[name] for name in names]


def _describe(eks: Any, cluster: str, name: str) -> dict[str, Any]:
    group: dict[str, Any] = _call(lambda: eks.describe_nodegroup(clusterName=cluster, nodegroupName=name))[
        "nodegroup"
    ]
    if group.get("status") in BUSY_STATUSES:
        raise BusyError(f"status {group['status']}")
    return group


def _shows(eks: Any, cluster: str, name: str, target: Scaling) -> bool:
    """Whether the group's scaling config now reads `target` (its status may be UPDATING)."""
    try:
        group = eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"]
    except (ClientError, BotoCoreError):
        return False
    return Scaling.from_eks(group["scalingConfig"]) == target


def _call(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except ClientError as exc:
        if _code(exc) in RETRYABLE_CODES:
            raise BusyError(_describe_error(exc)) from exc
        raise


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _describe_error(exc: ClientError) -> str:
    return f"{_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}"


def _skip(name: str, current: Scaling, reason: str) -> Change:
    return Change("nodegroup", name, "skipped", str(current), str(current), reason)
