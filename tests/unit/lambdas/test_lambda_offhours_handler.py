"""Off-hours scaler against moto EKS (with the bounds and faults moto lacks) and the K8s fake."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eks_double import CheckedEks, allow_nodegroup_tags, client_error
from k8s_fake import FakeKubernetes, make_deployment, make_scaled_object
from lambda_fakes import LambdaContextStub, load_event

from lambdas.common.clients import aws_client
from lambdas.common.retry import Backoff
from lambdas.common.settings import SettingsError
from lambdas.offhours_scaler import handler as offhours_handler
from lambdas.offhours_scaler import ready_check as ready_check_module
from lambdas.offhours_scaler import run as run_module
from lambdas.offhours_scaler.records import (
    KEDA_PAUSED_REPLICAS_ANNOTATION,
    KEEP_UP_ANNOTATION,
    KEEP_UP_TAG,
    PAUSED_BY_SCALER_ANNOTATION,
    RESTORE_ANNOTATION,
    RESTORE_TAG,
)
from lambdas.offhours_scaler.settings import ReadyCheckSettings

NS = "models"


@dataclass
class Stage:
    k8s: FakeKubernetes
    eks: CheckedEks
    cluster: str
    moto: Any

    def scaling(self, group: str) -> dict[str, int]:
        described = self.moto.describe_nodegroup(clusterName=self.cluster, nodegroupName=group)
        return dict(described["nodegroup"]["scalingConfig"])

    def tags(self, group: str) -> dict[str, str]:
        described = self.moto.describe_nodegroup(clusterName=self.cluster, nodegroupName=group)
        return dict(described["nodegroup"]["tags"])

    def replicas(self, name: str) -> int:
        return int(self.k8s.deployments[(NS, name)]["spec"]["replicas"])

    def annotations(self, name: str) -> dict[str, str]:
        return dict(self.k8s.deployments[(NS, name)]["metadata"].get("annotations") or {})

    def add_group(self, name: str, low: int, want: int, high: int, **tags: str) -> None:
        self.moto.create_nodegroup(
            clusterName=self.cluster,
            nodegroupName=name,
            nodeRole="arn:aws:iam::123456789012:role/node",
            subnets=["subnet-12345678"],
            scalingConfig={"minSize": low, "desiredSize": want, "maxSize": high},
            tags=dict(tags),
        )


@pytest.fixture
def stage(aws: None, cluster_env: FakeKubernetes, monkeypatch: pytest.MonkeyPatch) -> Stage:
    allow_nodegroup_tags(monkeypatch)
    monkeypatch.setattr(run_module, "DEFAULT_BACKOFF", Backoff(base=0.01, cap=0.05))
    cluster = f"inference-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CLUSTER_NAME", cluster)
    monkeypatch.setenv("DEPLOYMENTS", "llama-v1,mistral-v2")
    monkeypatch.setenv("NODE_GROUPS", '["gpu-spot", "gpu-ondemand"]')
    monkeypatch.setenv("OFF_HOURS_PER_NIGHT", "10")
    monkeypatch.setenv("RETRY_SECONDS", "2")
    moto = aws_client("eks")
    moto.create_cluster(
        name=cluster,
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-12345678"]},
    )
    eks = CheckedEks(moto)
    monkeypatch.setattr(offhours_handler, "aws_client", lambda s: eks if s == "eks" else aws_client(s))
    stage = Stage(cluster_env, eks, cluster, moto)
    stage.k8s.add_deployment(make_deployment("llama-v1", 3))
    stage.k8s.add_deployment(make_deployment("mistral-v2", 2))
    stage.k8s.add_deployment(make_deployment("not-covered", 4))
    stage.k8s.add_scaled_object(make_scaled_object("llama-v1", 1))
    stage.k8s.add_scaled_object(make_scaled_object("mistral-v2", 2))
    stage.add_group("gpu-spot", 1, 2, 6)
    stage.add_group("gpu-ondemand", 0, 1, 3)
    return stage


@pytest.fixture
def logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    buffer = io.StringIO()
    stream_handler = offhours_handler.logger.registered_handler
    assert isinstance(stream_handler, logging.StreamHandler)
    previous = stream_handler.setStream(buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    stream_handler.setStream(previous)


def scale_down(context: LambdaContextStub) -> dict[str, Any]:
    result: dict[str, Any] = offhours_handler.handler(load_event("offhours_scale_down.json"), context)
    return result


def scale_up(context: LambdaContextStub) -> dict[str, Any]:
    result: dict[str, Any] = offhours_handler.handler(load_event("offhours_scale_up.json"), context)
    return result


def by_name(result: dict[str, Any], kind: str = "") -> dict[str, dict[str, str]]:
    """Deployments and node groups by name (a model's ScaledObject shares its Deployment's name)."""
    kinds = (kind,) if kind else ("deployment", "nodegroup")
    return {change["name"]: change for change in result["changes"] if change["kind"] in kinds}


# -- round trip and ordering ---------------------------------------------------------------


def test_round_trip_restores_exactly_the_recorded_state(stage: Stage, context: LambdaContextStub) -> None:
    before = {g: stage.scaling(g) for g in ("gpu-spot", "gpu-ondemand")}
    down = scale_down(context)
    assert down["status"] == "ok"
    assert stage.replicas("llama-v1") == 0
    assert stage.replicas("mistral-v2") == 0
    assert stage.annotations("llama-v1")[RESTORE_ANNOTATION] == "3"
    assert stage.scaling("gpu-spot") == {"minSize": 0, "desiredSize": 0, "maxSize": 6}
    assert stage.tags("gpu-spot")[RESTORE_TAG] == "min=1/desired=2/max=6"
    assert stage.replicas("not-covered") == 4

    up = scale_up(context)
    assert up["status"] == "ok"
    assert stage.replicas("llama-v1") == 3
    assert stage.replicas("mistral-v2") == 2
    assert {g: stage.scaling(g) for g in before} == before
    assert RESTORE_ANNOTATION not in stage.annotations("llama-v1")
    assert RESTORE_TAG not in stage.tags("gpu-spot")


def test_scale_down_does_deployments_before_node_groups(stage: Stage, context: LambdaContextStub) -> None:
    scale_down(context)
    last_deployment_patch = max(t for t, m, _ in stage.k8s.timeline if m == "PATCH")
    first_group_write = min(t for t, _, _ in stage.eks.writes())
    assert last_deployment_patch < first_group_write


def test_scale_up_does_node_groups_before_deployments(stage: Stage, context: LambdaContextStub) -> None:
    scale_down(context)
    stage.k8s.timeline.clear()
    stage.eks.calls.clear()
    scale_up(context)
    last_group_resize = max(t for t, op, _ in stage.eks.calls if op == "update_nodegroup_config")
    first_deployment_patch = min(t for t, m, _ in stage.k8s.timeline if m == "PATCH")
    assert last_group_resize < first_deployment_patch


def test_scale_up_removes_every_record_only_after_every_restore(
    stage: Stage, context: LambdaContextStub
) -> None:
    scale_down(context)
    stage.k8s.patches.clear()
    stage.eks.calls.clear()
    scale_up(context)
    restores = [i for i, (_, patch) in enumerate(stage.k8s.patches) if "replicas" in patch.get("spec", {})]
    removals = [
        i
        for i, (_, patch) in enumerate(stage.k8s.patches)
        if RESTORE_ANNOTATION in patch.get("metadata", {}).get("annotations", {})
    ]
    assert len(restores) == len(removals) == 2
    assert max(restores) < min(removals)
    ops = [op for _, op, _ in stage.eks.calls]
    assert ops.index("untag_resource") > max(i for i, op in enumerate(ops) if op == "update_nodegroup_config")


def test_floor_and_max_bounds(
    stage: Stage, context: LambdaContextStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOOR_REPLICAS", "1")
    monkeypatch.setenv("FLOOR_NODES", "1")
    stage.add_group("gpu-tiny", 1, 1, 1)
    monkeypatch.setenv("NODE_GROUPS", "gpu-spot,gpu-ondemand,gpu-tiny")
    result = scale_down(context)
    assert stage.replicas("llama-v1") == 1
    assert stage.scaling("gpu-spot") == {"minSize": 1, "desiredSize": 1, "maxSize": 6}
    # Already at the floor: no record, nothing to restore later.
    assert by_name(result)["gpu-ondemand"]["result"] == "skipped"
    assert by_name(result)["gpu-tiny"]["result"] == "skipped"
    assert RESTORE_TAG not in stage.tags("gpu-tiny")


# -- idempotency and records ----------------------------------------------------------------


def test_second_scale_down_changes_nothing(stage: Stage, context: LambdaContextStub) -> None:
    scale_down(context)
    patches, writes = len(stage.k8s.patches), len(stage.eks.writes())
    second = scale_down(context)
    assert second["changed"] == 0
    assert len(stage.k8s.patches) == patches
    assert len(stage.eks.writes()) == writes
    assert stage.annotations("llama-v1")[RESTORE_ANNOTATION] == "3"
    assert stage.tags("gpu-spot")[RESTORE_TAG] == "min=1/desired=2/max=6"


def test_scale_up_without_record_does_nothing(stage: Stage, context: LambdaContextStub) -> None:
    result = scale_up(context)
    assert result["changed"] == 0
    assert {c["result"] for c in result["changes"]} == {"skipped"}
    assert {c["reason"] for c in by_name(result).values()} == {"nothing recorded"}
    assert {c["reason"] for c in by_name(result, "scaledobject").values()} == {
        "not paused by the off-hours scaler"
    }
    assert stage.k8s.patches == []
    assert stage.eks.writes() == []


def test_capacity_raised_by_hand_at_night_is_not_lowered(stage: Stage, context: LambdaContextStub) -> None:
    scale_down(context)
    stage.k8s.deployments[(NS, "llama-v1")]["spec"]["replicas"] = 5  # recorded 3
    stage.moto.update_nodegroup_config(
        clusterName=stage.cluster,
        nodegroupName="gpu-spot",
        scalingConfig={"minSize": 0, "desiredSize": 4, "maxSize": 6},  # recorded desired 2
    )
    scale_up(context)
    assert stage.replicas("llama-v1") == 5
    assert stage.replicas("mistral-v2") == 2
    assert stage.scaling("gpu-spot") == {"minSize": 1, "desiredSize": 4, "maxSize": 6}


def test_resize_that_failed_after_recording_is_completed_by_the_retry(
    stage: Stage, context: LambdaContextStub
) -> None:
    stage.eks.faults[("update_nodegroup_config", "gpu-spot")] = [
        client_error("ServerException", "UpdateNodegroupConfig")
    ]
    with pytest.raises(offhours_handler.ScalingIncompleteError):
        scale_down(context)
    assert stage.tags("gpu-spot")[RESTORE_TAG] == "min=1/desired=2/max=6"
    assert stage.scaling("gpu-spot")["minSize"] == 1
    retry = scale_down(context)
    assert by_name(retry)["gpu-spot"]["result"] == "scaled"
    assert stage.scaling("gpu-spot") == {"minSize": 0, "desiredSize": 0, "maxSize": 6}
    scale_up(context)
    assert stage.scaling("gpu-spot") == {"minSize": 1, "desiredSize": 2, "maxSize": 6}


def lose_update_of(group: str, fault: str) -> Callable[[str, str], str | None]:
    return lambda op, name: fault if (op, name) == ("update_nodegroup_config", group) else None


# "lose": applied, then the answer lost (botocore's ReadTimeoutError); "lose-then-busy": applied,
# botocore resent it, and EKS answered the resend ResourceInUseException.
@pytest.mark.parametrize("fault", ["lose", "lose-then-busy"])
def test_a_resize_whose_response_was_lost_is_counted_once(
    stage: Stage, context: LambdaContextStub, fault: str
) -> None:
    stage.eks.fault_hook = lose_update_of("gpu-spot", fault)
    result = scale_down(context)
    stage.eks.fault_hook = None
    assert result["status"] == "ok"
    assert by_name(result)["gpu-spot"]["result"] == "scaled"
    assert "response lost" in by_name(result)["gpu-spot"]["reason"]
    assert result["gpu_node_hours_saved"] == 30
    retry = scale_down(context)
    assert retry["gpu_node_hours_saved"] == 0  # the night was counted by the run that did it


@pytest.mark.parametrize("fault", ["lose", "lose-then-busy"])
def test_a_restore_whose_response_was_lost_is_confirmed(
    stage: Stage, context: LambdaContextStub, fault: str
) -> None:
    scale_down(context)
    stage.eks.fault_hook = lose_update_of("gpu-spot", fault)
    result = scale_up(context)
    stage.eks.fault_hook = None
    assert result["status"] == "ok"
    assert by_name(result)["gpu-spot"]["result"] == "restored"
    assert stage.scaling("gpu-spot") == {"minSize": 1, "desiredSize": 2, "maxSize": 6}
    assert RESTORE_TAG not in stage.tags("gpu-spot")


def test_409_on_deployment_patch_is_retried(stage: Stage, context: LambdaContextStub) -> None:
    stage.k8s.conflicts[f"/apis/apps/v1/namespaces/{NS}/deployments/llama-v1"] = 2
    result = scale_down(context)
    assert by_name(result)["llama-v1"]["result"] == "scaled"
    assert stage.replicas("llama-v1") == 0
    assert stage.annotations("llama-v1")[RESTORE_ANNOTATION] == "3"


# -- override --------------------------------------------------------------------------------


def test_override_annotation_and_tag_keep_things_up(stage: Stage, context: LambdaContextStub) -> None:
    stage.k8s.deployments[(NS, "llama-v1")]["metadata"]["annotations"][KEEP_UP_ANNOTATION] = "true"
    stage.moto.tag_resource(
        resourceArn=stage.moto.describe_nodegroup(clusterName=stage.cluster, nodegroupName="gpu-spot")[
            "nodegroup"
        ]["nodegroupArn"],
        tags={KEEP_UP_TAG: "true"},
    )
    result = scale_down(context)
    changes = by_name(result)
    assert changes["llama-v1"]["result"] == "skipped"
    assert KEEP_UP_ANNOTATION in changes["llama-v1"]["reason"]
    assert changes["gpu-spot"]["result"] == "skipped"
    assert KEEP_UP_TAG in changes["gpu-spot"]["reason"]
    assert stage.replicas("llama-v1") == 3
    assert stage.scaling("gpu-spot") == {"minSize": 1, "desiredSize": 2, "maxSize": 6}
    assert stage.replicas("mistral-v2") == 0  # the rest still scaled


# -- partial failure --------------------------------------------------------------------------


def test_busy_node_groups_are_retried_while_the_rest_proceeds(
    stage: Stage, context: LambdaContextStub
) -> None:
    stage.eks.faults[("describe_nodegroup", "gpu-spot")] = ["UPDATING", "UPDATING"]
    stage.eks.faults[("update_nodegroup_config", "gpu-ondemand")] = [
        client_error("ResourceInUseException", "UpdateNodegroupConfig"),
        client_error("ThrottlingException", "UpdateNodegroupConfig"),
    ]
    result = scale_down(context)
    assert result["status"] == "ok"
    assert stage.scaling("gpu-spot")["desiredSize"] == 0
    assert stage.scaling("gpu-ondemand")["desiredSize"] == 0
    updates = [c for c in stage.eks.calls if c[1] == "update_nodegroup_config"]
    # gpu-ondemand's first attempt came before gpu-spot's success: nobody waited in line.
    assert [g for _, _, g in updates] == [
        "gpu-ondemand",
        "gpu-ondemand",
        "gpu-spot",
        "gpu-ondemand",
    ]


def test_node_group_busy_past_the_retry_budget_is_reported_and_raised(
    stage: Stage,
    context: LambdaContextStub,
    logs: Callable[[], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETRY_SECONDS", "0.5")
    stage.eks.faults[("describe_nodegroup", "gpu-spot")] = ["UPDATING"] * 10_000
    with pytest.raises(offhours_handler.ScalingIncompleteError):
        scale_down(context)
    assert stage.scaling("gpu-ondemand")["desiredSize"] == 0  # the rest proceeded
    summary = next(line for line in logs() if line.get("message") == "summary")["summary"]
    spot = by_name(summary)["gpu-spot"]
    assert spot["result"] == "failed"
    assert "UPDATING" in spot["reason"]


def test_deployment_failure_keeps_the_nodes(stage: Stage, context: LambdaContextStub) -> None:
    stage.k8s.failures[("PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/llama-v1")] = 500
    with pytest.raises(offhours_handler.ScalingIncompleteError):
        scale_down(context)
    assert stage.eks.writes() == []
    assert stage.scaling("gpu-spot") == {"minSize": 1, "desiredSize": 2, "maxSize": 6}


# -- bad events, summary and metric ------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({}, id="missing-action"),
        pytest.param({"action": "scale_sideways"}, id="unknown-action"),
        pytest.param(["scale_down"], id="not-an-object"),
        pytest.param({"action": None}, id="null-action"),
    ],
)
def test_bad_events_are_rejected_without_change(
    stage: Stage,
    context: LambdaContextStub,
    logs: Callable[[], list[dict[str, Any]]],
    event: Any,
) -> None:
    result = offhours_handler.handler(event, context)
    assert result["status"] == "rejected"
    assert stage.k8s.calls == []
    assert stage.eks.calls == []
    line = next(line for line in logs() if line.get("message") == "event rejected")
    assert line["level"] == "ERROR"
    assert "action" in line["cause"]


def test_a_ca_that_is_not_a_certificate_is_a_configuration_error(
    stage: Stage,
    context: LambdaContextStub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    logs: Callable[[], list[dict[str, Any]]],
) -> None:
    monkeypatch.setenv("CLUSTER_CA_DATA", base64.b64encode(b"not a certificate").decode())
    with pytest.raises(SettingsError, match="CLUSTER_CA_DATA is base64, but not of a PEM certificate"):
        scale_down(context)
    line = next(line for line in logs() if line.get("message") == "invalid configuration")
    assert line["level"] == "ERROR"
    assert "CLUSTER_CA_DATA" in line["cause"]
    emf = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith('{"_aws"')]
    assert next(line for line in emf if "ConfigErrors" in line)["ConfigErrors"] in (1.0, [1.0])
    assert stage.k8s.calls == []
    assert stage.eks.calls == []


def test_summary_and_gpu_node_hours_metric(
    stage: Stage,
    context: LambdaContextStub,
    capsys: pytest.CaptureFixture[str],
    logs: Callable[[], list[dict[str, Any]]],
) -> None:
    result = scale_down(context)
    # gpu-spot 2 -> 0 and gpu-ondemand 1 -> 0 for a 10-hour night.
    assert result["gpu_node_hours_saved"] == 30
    assert by_name(result)["llama-v1"] == {
        "kind": "deployment",
        "name": "llama-v1",
        "result": "scaled",
        "from": "3",
        "to": "0",
        "reason": "",
    }
    assert by_name(result)["gpu-spot"]["from"] == "min=1/desired=2/max=6"
    assert by_name(result)["gpu-spot"]["to"] == "min=0/desired=0/max=6"
    summary = next(line for line in logs() if line.get("message") == "summary")
    assert summary["summary"] == result
    emf = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    saved = next(line for line in emf if "GpuNodeHoursSaved" in line)["GpuNodeHoursSaved"]
    assert saved in (30.0, [30.0])


def test_missing_deployments_are_skipped_not_fatal(
    stage: Stage, context: LambdaContextStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOYMENTS", '["llama-v1", "retired-model"]')
    result = scale_down(context)
    assert by_name(result)["retired-model"]["result"] == "skipped"
    assert "not found" in by_name(result)["retired-model"]["reason"]


# -- KEDA: paused while scaled down, resumed in the morning -------------------------------------


def so_annotations(stage: Stage, name: str) -> dict[str, str]:
    return dict(stage.k8s.scaled_objects[(NS, name)]["metadata"].get("annotations") or {})


def test_the_keda_double_undoes_replicas_set_behind_its_back(stage: Stage) -> None:
    """Why the scaler pauses KEDA: without a pause, KEDA's next poll restores minReplicaCount."""
    stage.k8s.deployments[(NS, "mistral-v2")]["spec"]["replicas"] = 0
    stage.k8s.keda_poll()
    assert stage.replicas("mistral-v2") == 2


@pytest.mark.parametrize("active", [False, True], ids=["idle", "requests-queued"])
def test_keda_does_not_undo_the_night(stage: Stage, context: LambdaContextStub, active: bool) -> None:
    down = scale_down(context)
    assert by_name(down, "scaledobject")["llama-v1"]["result"] == "paused"
    assert so_annotations(stage, "llama-v1")[KEDA_PAUSED_REPLICAS_ANNOTATION] == "0"
    stage.k8s.keda_poll(active=active)
    assert (stage.replicas("llama-v1"), stage.replicas("mistral-v2")) == (0, 0)

    up = scale_up(context)
    assert by_name(up, "scaledobject")["llama-v1"]["result"] == "resumed"
    stage.k8s.keda_poll(active=active)
    assert (stage.replicas("llama-v1"), stage.replicas("mistral-v2")) == (3, 2)
    assert KEDA_PAUSED_REPLICAS_ANNOTATION not in so_annotations(stage, "llama-v1")
    assert PAUSED_BY_SCALER_ANNOTATION not in so_annotations(stage, "llama-v1")


def test_keda_is_paused_at_the_floor(
    stage: Stage, context: LambdaContextStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOOR_REPLICAS", "1")
    scale_down(context)
    stage.k8s.keda_poll(active=True)
    assert so_annotations(stage, "mistral-v2")[KEDA_PAUSED_REPLICAS_ANNOTATION] == "1"
    assert stage.replicas("mistral-v2") == 1


def test_a_pause_somebody_else_set_is_left_alone(stage: Stage, context: LambdaContextStub) -> None:
    stage.k8s.scaled_objects[(NS, "mistral-v2")]["metadata"]["annotations"] = {
        KEDA_PAUSED_REPLICAS_ANNOTATION: "1"
    }
    down = scale_down(context)
    assert "paused by someone else" in by_name(down, "scaledobject")["mistral-v2"]["reason"]
    up = scale_up(context)
    assert by_name(up, "scaledobject")["mistral-v2"]["reason"] == "not paused by the off-hours scaler"
    assert so_annotations(stage, "mistral-v2") == {KEDA_PAUSED_REPLICAS_ANNOTATION: "1"}


def test_pause_failure_keeps_the_nodes_and_the_retry_completes_it(
    stage: Stage, context: LambdaContextStub
) -> None:
    path = f"/apis/keda.sh/v1alpha1/namespaces/{NS}/scaledobjects/llama-v1"
    stage.k8s.failures[("PATCH", path)] = 500
    with pytest.raises(offhours_handler.ScalingIncompleteError):
        scale_down(context)
    assert stage.eks.writes() == []
    del stage.k8s.failures[("PATCH", path)]
    retry = scale_down(context)
    assert by_name(retry)["llama-v1"]["reason"].startswith("already scaled down")
    assert by_name(retry, "scaledobject")["llama-v1"]["result"] == "paused"
    assert stage.scaling("gpu-spot")["desiredSize"] == 0


def test_scale_up_resumes_keda_before_restoring_each_deployment(
    stage: Stage, context: LambdaContextStub
) -> None:
    scale_down(context)
    stage.k8s.patches.clear()
    scale_up(context)
    paths = [path.rsplit("/", 2)[-2:] for path, _ in stage.k8s.patches]
    assert paths == [
        ["scaledobjects", "llama-v1"],
        ["deployments", "llama-v1"],
        ["scaledobjects", "mistral-v2"],
        ["deployments", "mistral-v2"],
        # then the records, once everything is restored
        ["deployments", "llama-v1"],
        ["deployments", "mistral-v2"],
    ]


def test_models_without_a_scaled_object_are_still_scaled(stage: Stage, context: LambdaContextStub) -> None:
    del stage.k8s.scaled_objects[(NS, "mistral-v2")]
    down = scale_down(context)
    assert down["status"] == "ok"
    assert by_name(down, "scaledobject")["mistral-v2"]["result"] == "skipped"
    assert stage.replicas("mistral-v2") == 0


# -- readiness: the check a scale-up books, and the check itself ---------------------------------

GROUP = "ready-checks"
ROLE = "arn:aws:iam::123456789012:role/scheduler"
DLQ = "arn:aws:sqs:us-east-1:123456789012:offhours-dlq"


@pytest.fixture
def ready_check(stage: Stage, monkeypatch: pytest.MonkeyPatch) -> Any:
    """READY_CHECK_* set, and moto's scheduler with the group OpsStack would create."""
    monkeypatch.setenv("READY_CHECK_MINUTES", "30")
    monkeypatch.setenv("READY_CHECK_SCHEDULE_GROUP", GROUP)
    monkeypatch.setenv("READY_CHECK_ROLE_ARN", ROLE)
    monkeypatch.setenv("DEAD_LETTER_QUEUE_ARN", DLQ)
    scheduler = aws_client("scheduler")
    with contextlib.suppress(scheduler.exceptions.ConflictException):
        scheduler.create_schedule_group(Name=GROUP)
    with contextlib.suppress(scheduler.exceptions.ResourceNotFoundException):
        scheduler.delete_schedule(Name=ready_check_module.SCHEDULE_NAME, GroupName=GROUP)
    return scheduler


def booked(scheduler: Any) -> dict[str, Any] | None:
    try:
        schedule: dict[str, Any] = scheduler.get_schedule(Name="ready-check", GroupName=GROUP)
    except scheduler.exceptions.ResourceNotFoundException:
        return None
    return schedule


def at_time(schedule: dict[str, Any]) -> dt.datetime:
    expression = schedule["ScheduleExpression"]
    assert expression.startswith("at(")
    assert expression.endswith(")")
    return dt.datetime.fromisoformat(expression[3:-1]).replace(tzinfo=dt.UTC)


def test_a_scale_up_books_one_readiness_check(
    stage: Stage, context: LambdaContextStub, ready_check: Any
) -> None:
    scale_down(context)
    before = dt.datetime.now(dt.UTC)
    up = scale_up(context)
    schedule = booked(ready_check)
    assert schedule is not None
    assert by_name(up, "schedule")["ready-check"]["result"] == "scheduled"
    assert dt.timedelta(minutes=29) < at_time(schedule) - before < dt.timedelta(minutes=31)
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = schedule["Target"]
    assert json.loads(target["Input"]) == load_event("offhours_check_ready.json")
    assert target["Arn"] == context.invoked_function_arn
    assert (target["RoleArn"], target["DeadLetterConfig"]["Arn"]) == (ROLE, DLQ)
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1


def test_a_scale_up_that_restored_nothing_books_no_check(
    stage: Stage, context: LambdaContextStub, ready_check: Any
) -> None:
    up = scale_up(context)
    assert up["changed"] == 0
    assert booked(ready_check) is None


def test_booking_again_moves_the_one_check() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, dict[str, Any]]] = []

        def create_schedule(self, **request: Any) -> None:
            self.calls.append(("create", request))
            if len(self.calls) > 1:
                raise client_error("ConflictException", "CreateSchedule")

        def update_schedule(self, **request: Any) -> None:
            self.calls.append(("update", request))

    settings = ReadyCheckSettings(30, GROUP, ROLE, DLQ)
    scheduler = Recorder()
    morning = dt.datetime(2026, 11, 30, 7, 0, 5, 123, tzinfo=dt.UTC)
    first = ready_check_module.book(scheduler, settings, function_arn="arn:fn", now=morning)
    second = ready_check_module.book(
        scheduler, settings, function_arn="arn:fn", now=morning + dt.timedelta(minutes=20)
    )
    assert (first.after, second.after) == ("2026-11-30T07:30:05Z", "2026-11-30T07:50:05Z")
    assert [kind for kind, _ in scheduler.calls] == ["create", "create", "update"]
    assert scheduler.calls[-1][1]["ScheduleExpression"] == "at(2026-11-30T07:50:05)"
    assert {request["Name"] for _, request in scheduler.calls} == {"ready-check"}


def test_a_check_that_cannot_be_booked_fails_the_run_for_a_retry(
    stage: Stage,
    context: LambdaContextStub,
    ready_check: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Denied:
        def create_schedule(self, **_: Any) -> None:
            raise client_error("AccessDeniedException", "CreateSchedule")

    eks = stage.eks
    monkeypatch.setattr(offhours_handler, "aws_client", lambda s: Denied() if s == "scheduler" else eks)
    scale_down(context)
    with pytest.raises(offhours_handler.ScalingIncompleteError):
        scale_up(context)
    assert stage.replicas("llama-v1") == 3  # the restore itself is done
    assert booked(ready_check) is None


def test_a_booking_throttled_on_every_attempt_is_redone_by_the_retry(
    stage: Stage,
    context: LambdaContextStub,
    ready_check: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue #16, defect 2: the retry found everything restored, changed nothing and booked nothing."""

    class Throttled:
        def create_schedule(self, **_: Any) -> None:
            raise client_error("ThrottlingException", "CreateSchedule")

    eks = stage.eks
    scale_down(context)
    monkeypatch.setattr(offhours_handler, "aws_client", lambda s: Throttled() if s == "scheduler" else eks)
    with pytest.raises(offhours_handler.ScalingIncompleteError):
        scale_up(context)
    # Restored, but not verified: the records stay, the retry's evidence that a check is owed.
    assert (stage.replicas("llama-v1"), stage.annotations("llama-v1")[RESTORE_ANNOTATION]) == (3, "3")
    assert stage.tags("gpu-spot")[RESTORE_TAG] == "min=1/desired=2/max=6"
    monkeypatch.setattr(offhours_handler, "aws_client", lambda s: eks if s == "eks" else ready_check)
    retry = scale_up(context)
    assert retry["changed"] == 0
    assert by_name(retry, "schedule")["ready-check"]["result"] == "scheduled"
    assert booked(ready_check) is not None
    assert RESTORE_ANNOTATION not in stage.annotations("llama-v1")
    assert RESTORE_TAG not in stage.tags("gpu-spot")
    # Once booked and forgotten, a further run is a morning with nothing to restore.
    ready_check.delete_schedule(Name="ready-check", GroupName=GROUP)
    assert scale_up(context)["changed"] == 0
    assert booked(ready_check) is None


def test_a_failed_keda_resume_keeps_the_record_and_the_retry_restores(
    stage: Stage, context: LambdaContextStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #16, defect 1: the model ended at KEDA's minimum (1) instead of the recorded 3."""
    monkeypatch.setenv("FLOOR_REPLICAS", "1")
    scale_down(context)
    path = f"/apis/keda.sh/v1alpha1/namespaces/{NS}/scaledobjects/llama-v1"
    stage.k8s.failures[("PATCH", path)] = 500
    with pytest.raises(offhours_handler.ScalingIncompleteError) as raised:
        scale_up(context)
    assert "not scaled" in str(raised.value)
    assert stage.replicas("llama-v1") == 1  # not restored behind a paused KEDA
    assert stage.annotations("llama-v1")[RESTORE_ANNOTATION] == "3"
    stage.k8s.keda_poll()  # still paused: holds the floor
    del stage.k8s.failures[("PATCH", path)]
    retry = scale_up(context)
    assert by_name(retry, "scaledobject")["llama-v1"]["result"] == "resumed"
    assert by_name(retry)["llama-v1"]["result"] == "restored"
    stage.k8s.keda_poll()
    assert stage.replicas("llama-v1") == 3
    assert RESTORE_ANNOTATION not in stage.annotations("llama-v1")


def test_a_retry_puts_a_deployment_keda_raised_back_to_the_floor(
    stage: Stage, context: LambdaContextStub
) -> None:
    path = f"/apis/keda.sh/v1alpha1/namespaces/{NS}/scaledobjects/mistral-v2"
    stage.k8s.failures[("PATCH", path)] = 500
    with pytest.raises(offhours_handler.ScalingIncompleteError):
        scale_down(context)
    stage.k8s.keda_poll()  # not paused: back to minReplicaCount 2
    assert stage.replicas("mistral-v2") == 2
    del stage.k8s.failures[("PATCH", path)]
    retry = scale_down(context)
    assert by_name(retry)["mistral-v2"] == {
        "kind": "deployment",
        "name": "mistral-v2",
        "result": "scaled",
        "from": "2",
        "to": "0",
        "reason": "recorded 2",
    }
    assert stage.replicas("mistral-v2") == 0
    assert stage.annotations("mistral-v2")[RESTORE_ANNOTATION] == "2"


def check_ready(context: LambdaContextStub) -> dict[str, Any]:
    result: dict[str, Any] = offhours_handler.handler(load_event("offhours_check_ready.json"), context)
    return result


def models_not_ready_metric(capsys: pytest.CaptureFixture[str]) -> float:
    emf = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith('{"_aws"')]
    value = next(line for line in emf if "ModelsNotReady" in line)["ModelsNotReady"]
    return float(value[0] if isinstance(value, list) else value)


def test_check_ready_reports_every_model_ready(
    stage: Stage, context: LambdaContextStub, capsys: pytest.CaptureFixture[str]
) -> None:
    result = check_ready(context)
    assert result["status"] == "ok"
    assert result["not_ready"] == []
    assert models_not_ready_metric(capsys) == 0
    assert stage.k8s.patches == []


def test_check_ready_counts_models_with_no_ready_replica(
    stage: Stage,
    context: LambdaContextStub,
    capsys: pytest.CaptureFixture[str],
    logs: Callable[[], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEPLOYMENTS", "llama-v1,mistral-v2,retired-model")
    stage.k8s.deployments[(NS, "llama-v1")]["status"]["readyReplicas"] = 0  # pods still loading
    stage.k8s.deployments[(NS, "mistral-v2")]["status"]["readyReplicas"] = 1
    result = check_ready(context)
    assert result["status"] == "not_ready"
    assert result["not_ready"] == ["llama-v1", "retired-model"]
    readiness = {item["name"]: item for item in result["readiness"]}
    assert (
        readiness["llama-v1"]["reason"] == "0 of 3 replicas ready (pending pods, image pull or model load?)"
    )
    assert readiness["retired-model"]["reason"] == "not found in models"
    assert models_not_ready_metric(capsys) == 2
    errors = [line for line in logs() if line.get("message") == "model not ready after scale-up"]
    assert [line["readiness"]["name"] for line in errors] == ["llama-v1", "retired-model"]
    assert stage.k8s.patches == []
    assert stage.eks.writes() == []


def test_check_ready_names_a_model_the_scale_up_left_down(stage: Stage, context: LambdaContextStub) -> None:
    scale_down(context)
    result = check_ready(context)
    reasons = {item["name"]: item["reason"] for item in result["readiness"]}
    assert reasons["llama-v1"].startswith("still scaled down")
    assert result["not_ready"] == ["llama-v1", "mistral-v2"]


def test_check_ready_counts_an_unreadable_deployment_as_not_ready(
    stage: Stage, context: LambdaContextStub
) -> None:
    stage.k8s.failures[("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/mistral-v2")] = 500
    result = check_ready(context)
    assert result["not_ready"] == ["mistral-v2"]
    assert "could not read it" in result["readiness"][1]["reason"]
