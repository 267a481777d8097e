"""The off-hours scaler's retry promise, proved by injecting a fault at every API call.

For scale_down and scale_up: record the API calls of a clean run (Kubernetes, EKS, Scheduler, in
order). Then for every position k, from the same start: make call k fail (nothing applied), or
apply it and lose its response; let KEDA reconcile (a paused ScaledObject holds its Deployment at
the paused count, an unpaused one at least at minReplicaCount); retry once with no fault. The final
Kubernetes, EKS and Scheduler state must equal the clean run's, a run with a fault must say so
(or already have reached that state), and scale_down's GPU node-hours must be counted exactly once.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from eks_double import CheckedEks, allow_nodegroup_tags, client_error
from k8s_fake import FakeKubernetes, make_deployment, make_scaled_object
from lambda_fakes import StaticToken

from lambdas.common.clients import aws_client
from lambdas.common.k8s import K8sClient, ssl_context_from_ca_data
from lambdas.common.retry import Backoff, Deadline
from lambdas.offhours_scaler import ready_check
from lambdas.offhours_scaler.events import Action
from lambdas.offhours_scaler.records import RESTORE_ANNOTATION, Change
from lambdas.offhours_scaler.run import RunSummary, run
from lambdas.offhours_scaler.settings import ScalerSettings

NS = "models"
GROUP = "ready-checks-faults"
GROUPS = ("gpu-spot", "gpu-ondemand")
MODELS = ("llama-v1", "mistral-v2")
MODES = ("fail", "lose")
# The scale-up books its check relative to now: one fixed morning makes a retry's booking
# comparable with the clean run's (a real retry moves the one check later, which is the point).
MORNING = dt.datetime(2026, 11, 30, 7, 0, 5, tzinfo=dt.UTC)
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:offhours"


class Faults:
    """Numbers every call the run makes, across all three APIs, and faults call number `at`."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.at = -1
        self.mode = ""

    def arm(self, at: int = -1, mode: str = "") -> None:
        self.calls, self.at, self.mode = [], at, mode

    def __call__(self, operation: str, target: str) -> str | None:
        self.calls.append(f"{operation} {target}")
        return self.mode if len(self.calls) - 1 == self.at else None

    @property
    def hit(self) -> bool:
        return len(self.calls) > self.at >= 0


class FaultyScheduler:
    """moto's EventBridge Scheduler, with the same fault hook as the other two APIs."""

    def __init__(self, client: Any, faults: Faults) -> None:
        self._client, self._faults = client, faults
        self.exceptions = client.exceptions

    def _call(self, operation: str, request: dict[str, Any]) -> Any:
        fault = self._faults(operation, str(request.get("Name")))
        if fault == "fail":
            raise client_error("InternalServerException", operation, "injected failure; nothing applied")
        result = getattr(self._client, operation)(**request)
        if fault == "lose":
            raise ReadTimeoutError(endpoint_url=f"https://scheduler.amazonaws.com/{operation}")
        return result

    def create_schedule(self, **request: Any) -> Any:
        return self._call("create_schedule", request)

    def update_schedule(self, **request: Any) -> Any:
        return self._call("update_schedule", request)


@dataclass
class World:
    k8s: FakeKubernetes
    client: K8sClient
    moto: Any
    eks: CheckedEks
    scheduler: Any
    cluster: str
    settings: ScalerSettings
    faults: Faults = field(default_factory=Faults)

    def arn(self, group: str) -> str:
        described = self.moto.describe_nodegroup(clusterName=self.cluster, nodegroupName=group)
        return str(described["nodegroup"]["nodegroupArn"])

    def state(self) -> dict[str, Any]:
        """Everything a run may change, as plain data (what the equality is asserted on)."""
        groups = {}
        for group in GROUPS:
            described = self.moto.describe_nodegroup(clusterName=self.cluster, nodegroupName=group)
            groups[group] = {
                "scaling": dict(described["nodegroup"]["scalingConfig"]),
                "tags": dict(described["nodegroup"].get("tags") or {}),
            }
        schedule = None
        with contextlib.suppress(self.scheduler.exceptions.ResourceNotFoundException):
            got = self.scheduler.get_schedule(Name=ready_check.SCHEDULE_NAME, GroupName=GROUP)
            kept = ("ScheduleExpression", "ScheduleExpressionTimezone", "State", "Target")
            schedule = {key: got.get(key) for key in kept}
        return {
            "deployments": {
                name: {
                    "replicas": dep["spec"]["replicas"],
                    "annotations": dict(dep["metadata"].get("annotations") or {}),
                }
                for (_, name), dep in sorted(self.k8s.deployments.items())
            },
            "scaledobjects": {
                name: dict(so["metadata"].get("annotations") or {})
                for (_, name), so in sorted(self.k8s.scaled_objects.items())
            },
            "nodegroups": groups,
            "schedule": schedule,
        }

    def load(self, state: dict[str, Any]) -> None:
        """Put the world back into `state`, behind the scaler's back (no call is counted)."""
        with self.k8s.lock:
            for name, dep in state["deployments"].items():
                replicas = dep["replicas"]
                obj = make_deployment(name, replicas, annotations=copy.deepcopy(dep["annotations"]))
                self.k8s.add_deployment(obj)
            for name, annotations in state["scaledobjects"].items():
                minimum = {"llama-v1": 1, "mistral-v2": 2}[name]
                self.k8s.add_scaled_object(make_scaled_object(name, minimum, annotations=dict(annotations)))
        for group, wanted in state["nodegroups"].items():
            self.moto.update_nodegroup_config(
                clusterName=self.cluster, nodegroupName=group, scalingConfig=wanted["scaling"]
            )
            arn = self.arn(group)
            current = self.moto.describe_nodegroup(clusterName=self.cluster, nodegroupName=group)
            stale = [key for key in current["nodegroup"].get("tags") or {} if key not in wanted["tags"]]
            if stale:
                self.moto.untag_resource(resourceArn=arn, tagKeys=stale)
            if wanted["tags"]:
                self.moto.tag_resource(resourceArn=arn, tags=wanted["tags"])
        with contextlib.suppress(self.scheduler.exceptions.ResourceNotFoundException):
            self.scheduler.delete_schedule(Name=ready_check.SCHEDULE_NAME, GroupName=GROUP)
        assert state["schedule"] is None, "start states have no booked check"

    def run(self, action: Action) -> RunSummary:
        check = self.settings.ready_check
        assert check is not None
        booking_api = FaultyScheduler(self.scheduler, self.faults)
        return run(
            action,
            self.settings,
            k8s=self.client,
            eks=self.eks,
            deadline=Deadline(time.time() + 5),
            book_ready_check=lambda: ready_check.book(
                booking_api, check, function_arn=FUNCTION_ARN, now=MORNING
            ),
            backoff=Backoff(base=0.001, cap=0.002),
        )


@pytest.fixture
def world(aws: None, k8s: FakeKubernetes, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    allow_nodegroup_tags(monkeypatch)
    cluster = f"faults-{uuid.uuid4().hex[:8]}"
    env = {
        "CLUSTER_NAME": cluster,
        "CLUSTER_ENDPOINT": k8s.endpoint,
        "CLUSTER_CA_DATA": k8s.ca_data,
        "DEPLOYMENTS": ",".join(MODELS),
        "NODE_GROUPS": ",".join(GROUPS),
        "OFF_HOURS_PER_NIGHT": "10",
        "READY_CHECK_MINUTES": "30",
        "READY_CHECK_SCHEDULE_GROUP": GROUP,
        "READY_CHECK_ROLE_ARN": "arn:aws:iam::123456789012:role/scheduler",
        "DEAD_LETTER_QUEUE_ARN": "arn:aws:sqs:us-east-1:123456789012:offhours-dlq",
    }
    settings = ScalerSettings.from_env(env)
    moto = aws_client("eks")
    moto.create_cluster(
        name=cluster,
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-12345678"]},
    )
    for group, (low, want, high) in zip(GROUPS, ((1, 2, 6), (0, 1, 3)), strict=True):
        moto.create_nodegroup(
            clusterName=cluster,
            nodegroupName=group,
            nodeRole="arn:aws:iam::123456789012:role/node",
            subnets=["subnet-12345678"],
            scalingConfig={"minSize": low, "desiredSize": want, "maxSize": high},
        )
    scheduler = aws_client("scheduler")
    with contextlib.suppress(scheduler.exceptions.ConflictException):
        scheduler.create_schedule_group(Name=GROUP)
    client = K8sClient(k8s.endpoint, ssl_context_from_ca_data(k8s.ca_data), StaticToken())
    world = World(k8s, client, moto, CheckedEks(moto), scheduler, cluster, settings)
    world.k8s.fault_hook = lambda method, path: world.faults(
        method, path.rsplit("/", 2)[-2] + "/" + path.rsplit("/", 1)[-1]
    )
    world.eks.fault_hook = world.faults
    world.k8s.add_deployment(make_deployment("llama-v1", 3))
    world.k8s.add_deployment(make_deployment("mistral-v2", 2))
    world.k8s.add_deployment(make_deployment("not-covered", 4))
    world.k8s.add_scaled_object(make_scaled_object("llama-v1", 1))
    world.k8s.add_scaled_object(make_scaled_object("mistral-v2", 2))
    yield world
    client.close()


def diff(got: dict[str, Any], want: dict[str, Any]) -> str:
    """The objects that differ, as `kind/name: got != want`."""
    parts = []
    for kind, wanted in want.items():
        if isinstance(wanted, dict) and isinstance(got[kind], dict):
            for name in sorted(set(got[kind]) | set(wanted)):
                if got[kind].get(name) != wanted.get(name):
                    parts.append(f"{kind}/{name}: {got[kind].get(name)} != {wanted.get(name)}")
        elif got[kind] != wanted:
            parts.append(f"{kind}: {got[kind]} != {wanted}")
    return "; ".join(parts)


@dataclass(frozen=True)
class Sweep:
    calls: list[str]
    problems: list[str]


def sweep(world: World, action: Action, start: dict[str, Any]) -> tuple[Sweep, dict[str, Any]]:
    """Run `action` cleanly from `start`, then once per call position and mode with that fault."""
    world.load(start)
    world.faults.arm()
    clean_run = world.run(action)
    assert clean_run.failed == 0, clean_run.as_dict()
    clean, calls = world.state(), list(world.faults.calls)
    problems: list[str] = []
    for k, label in enumerate(calls):
        for mode in MODES:
            where = f"{action}, call {k} ({label}) {mode}"
            world.load(start)
            world.faults.arm(k, mode)
            try:
                first = world.run(action)
            except Exception as exc:  # the handler raises it too, and Lambda retries
                first = RunSummary(action, [Change("run", action, "failed", reason=repr(exc))])
            assert world.faults.hit, where
            if not first.failed and world.state() != clean:
                problems.append(f"{where}: reported ok, but left {diff(world.state(), clean)}")
            world.k8s.keda_poll()  # KEDA acts on whatever the failed run left
            world.faults.arm()
            retry = world.run(action)
            if retry.failed:
                problems.append(f"{where}: the retry failed: {retry.as_dict()['changes']}")
            if world.state() != clean:
                problems.append(f"{where}: after the retry {diff(world.state(), clean)}")
            saved = first.gpu_node_hours_saved + retry.gpu_node_hours_saved
            if saved != clean_run.gpu_node_hours_saved:
                problems.append(f"{where}: GPU node-hours {saved} != {clean_run.gpu_node_hours_saved}")
    return Sweep(calls, problems), clean


def test_scale_down_survives_a_fault_at_every_call(world: World) -> None:
    start = world.state()
    result, clean = sweep(world, "scale_down", start)
    # The clean run did the whole night: the sweep covered every kind of call it makes.
    assert clean["deployments"]["llama-v1"] == {"replicas": 0, "annotations": {RESTORE_ANNOTATION: "3"}}
    assert clean["nodegroups"]["gpu-spot"]["scaling"]["desiredSize"] == 0
    assert {call.split()[0] for call in result.calls} == {
        "GET",
        "PATCH",
        "describe_nodegroup",
        "tag_resource",
        "update_nodegroup_config",
    }
    assert not result.problems, "\n".join(result.problems)


def test_scale_up_survives_a_fault_at_every_call(world: World) -> None:
    initial = world.state()
    world.faults.arm()
    assert world.run("scale_down").failed == 0
    night = world.state()
    result, clean = sweep(world, "scale_up", night)
    assert clean == {**initial, "schedule": clean["schedule"]}  # the morning restored the evening
    assert clean["schedule"] is not None
    assert clean["schedule"]["ScheduleExpression"] == "at(2026-11-30T07:30:05)"
    assert {call.split()[0] for call in result.calls} == {
        "GET",
        "PATCH",
        "describe_nodegroup",
        "update_nodegroup_config",
        "create_schedule",
        "untag_resource",
    }
    assert not result.problems, "\n".join(result.problems)
