"""Off-hours scaler against moto EKS (with the bounds and faults moto lacks) and the K8s fake."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eks_double import CheckedEks, allow_nodegroup_tags, client_error
from k8s_fake import FakeKubernetes, make_deployment
from lambda_fakes import LambdaContextStub, load_event

from lambdas.common.clients import aws_client
from lambdas.common.retry import Backoff
from lambdas.offhours_scaler import handler as offhours_handler
from lambdas.offhours_scaler import run as run_module
from lambdas.offhours_scaler.records import (
    KEEP_UP_ANNOTATION,
    KEEP_UP_TAG,
    RESTORE_ANNOTATION,
    RESTORE_TAG,
)

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


def by_name(result: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {change["name"]: change for change in result["changes"]}


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
    last_group_write = max(t for t, _, _ in stage.eks.writes())
    first_deployment_patch = min(t for t, m, _ in stage.k8s.timeline if m == "PATCH")
    assert last_group_write < first_deployment_patch


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
    assert {c["reason"] for c in result["changes"]} == {"nothing recorded"}
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
