"""The off-hours scaler's retry promise, proved by injecting a fault at every API call.

For scale_down and scale_up: record the API calls of a clean run (Kubernetes, EKS, Scheduler, in
order). Then for every position k, from the same start: make call k fail (nothing applied), or
apply it and lose its response, or cut the run off at call k (every call from k on fails, as when
the function times out or crashes there); let KEDA reconcile (a paused ScaledObject holds its
Deployment at the paused count, an unpaused one at least at minReplicaCount); retry once with no
fault. The final Kubernetes, EKS and Scheduler state must equal the clean run's, a run with a
fault must say so (or already have reached that state), and scale_down's GPU node-hours must be
counted exactly once (except for a run cut off, which emits no metric).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from eks_double import CheckedEks, MemoryEks, client_error
from k8s_fake import FakeKubernetes, make_deployment, make_scaled_object
from lambda_fakes import StaticToken

from lambdas.common.k8s import K8sClient, ssl_context_from_ca_data
from lambdas.common.retry import Backoff, Deadline
from lambdas.offhours_scaler import ready_check
from lambdas.offhours_scaler.events import Action
from lambdas.offhours_scaler.records import RESTORE_ANNOTATION, Change
from lambdas.offhours_scaler.run import RunSummary, run
from lambdas.offhours_scaler.settings import ScalerSettings
from stacks.ops.rbac import OFFHOURS_SCALER_RULES

NS = "models"
OPERATIONS_DOC = Path(__file__).resolve().parents[3] / "docs" / "operations.md"
GROUP = "ready-checks"
CLUSTER = "inference-faults"
GROUPS = ("gpu-spot", "gpu-ondemand")
MODELS = ("llama-v1", "mistral-v2")
MODES = ("fail", "lose", "cut")
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
        position = len(self.calls) - 1
        if self.mode == "cut":  # the run ends at call `at`: nothing from there on takes effect
            return "fail" if position >= self.at >= 0 else None
        return self.mode if position == self.at else None

    @property
    def hit(self) -> bool:
        return len(self.calls) > self.at >= 0


class MemoryScheduler:
    """EventBridge Scheduler's one-time schedules in a dict, with the same fault hook as the rest.

    Answers like the API: CreateSchedule on a taken name is a ConflictException, UpdateSchedule on
    a missing one a ResourceNotFoundException (moto's scheduler, used by the handler tests, agrees).
    """

    def __init__(self, faults: Faults) -> None:
        self.schedules: dict[tuple[str, str], dict[str, Any]] = {}
        self._faults = faults

    def _call(self, operation: str, request: dict[str, Any], exists: bool, error: str) -> Any:
        fault = self._faults(operation, str(request["Name"]))
        if fault == "fail":
            raise client_error("InternalServerException", operation, "injected failure; nothing applied")
        key = (request["GroupName"], request["Name"])
        if (key in self.schedules) != exists:
            raise client_error(error, operation, f"schedule {key}")
        self.schedules[key] = copy.deepcopy(request)
        if fault == "lose":
            raise ReadTimeoutError(endpoint_url=f"https://scheduler.amazonaws.com/{operation}")
        return {"ScheduleArn": f"arn:aws:scheduler:us-east-1:123456789012:schedule/{key[0]}/{key[1]}"}

    def create_schedule(self, **request: Any) -> Any:
        return self._call("create_schedule", request, False, "ConflictException")

    def update_schedule(self, **request: Any) -> Any:
        return self._call("update_schedule", request, True, "ResourceNotFoundException")


@dataclass
class World:
    k8s: FakeKubernetes
    client: K8sClient
    eks_state: MemoryEks
    eks: CheckedEks
    scheduler: MemoryScheduler
    settings: ScalerSettings
    faults: Faults

    def state(self) -> dict[str, Any]:
        """Everything a run may change, as plain data (what the equality is asserted on)."""
        booked = self.scheduler.schedules.get((GROUP, ready_check.SCHEDULE_NAME))
        kept = ("ScheduleExpression", "ScheduleExpressionTimezone", "State", "Target")
        return {
            "deployments": {
                name: {
                    "replicas": dep["spec"]["replicas"],
                    "annotations": dict(dep["metadata"].get("annotations") or {}),
                }
                for (_, name), dep in sorted(self.k8s.deployments.items())
            },
            "scaledobjects": {
                name: {
                    "minReplicaCount": so["spec"]["minReplicaCount"],
                    "annotations": dict(so["metadata"].get("annotations") or {}),
                }
                for (_, name), so in sorted(self.k8s.scaled_objects.items())
            },
            "nodegroups": {
                name: {"scaling": dict(group["scalingConfig"]), "tags": dict(group["tags"])}
                for name, group in sorted(self.eks_state.groups.items())
            },
            "schedule": None if booked is None else {key: booked.get(key) for key in kept},
        }

    def load(self, state: dict[str, Any]) -> None:
        """Put the world back into `state` behind the scaler's back (no call is counted)."""
        assert state["schedule"] is None, "start states have no booked check"
        for name, dep in state["deployments"].items():
            annotations = copy.deepcopy(dep["annotations"])
            self.k8s.add_deployment(make_deployment(name, dep["replicas"], annotations=annotations))
        for name, so in state["scaledobjects"].items():
            annotations = dict(so["annotations"])
            self.k8s.add_scaled_object(
                make_scaled_object(name, so["minReplicaCount"], annotations=annotations)
            )
        for name, group in state["nodegroups"].items():
            self.eks_state.groups[name]["scalingConfig"] = dict(group["scaling"])
            self.eks_state.groups[name]["tags"] = dict(group["tags"])
        self.scheduler.schedules.clear()

    def run(self, action: Action) -> RunSummary:
        check = self.settings.ready_check
        assert check is not None
        return run(
            action,
            self.settings,
            k8s=self.client,
            eks=self.eks,
            deadline=Deadline(time.time() + 5),
            book_ready_check=lambda: ready_check.book(
                self.scheduler, check, function_arn=FUNCTION_ARN, now=MORNING
            ),
            backoff=Backoff(base=0.001, cap=0.002),
        )


@pytest.fixture(params=[0, 1], ids=["floor-0", "floor-1"])
def floor(request: pytest.FixtureRequest) -> int:
    """The night's floor for replicas and nodes: 0 like dev and staging, 1 like prod."""
    return int(request.param)


@pytest.fixture
def world(k8s: FakeKubernetes, floor: int) -> Iterator[World]:
    env = {
        "FLOOR_REPLICAS": str(floor),
        "FLOOR_NODES": str(floor),
        "CLUSTER_NAME": CLUSTER,
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
    faults = Faults()
    eks_state = MemoryEks(CLUSTER)
    eks_state.add_group("gpu-spot", 1, 2, 6)
    eks_state.add_group("gpu-ondemand", 0, 1, 3)
    eks = CheckedEks(eks_state)
    eks.fault_hook = faults
    # Faults are named by method and the last two path segments: "PATCH scaledobjects/llama-v1".
    k8s.fault_hook = lambda method, path: faults(method, "/".join(path.rsplit("/", 2)[-2:]))
    k8s.add_deployment(make_deployment("llama-v1", 3))
    k8s.add_deployment(make_deployment("mistral-v2", 2))
    k8s.add_deployment(make_deployment("not-covered", 4))
    k8s.add_scaled_object(make_scaled_object("llama-v1", 1))
    k8s.add_scaled_object(make_scaled_object("mistral-v2", 2))
    client = K8sClient(k8s.endpoint, ssl_context_from_ca_data(k8s.ca_data), StaticToken())
    yield World(k8s, client, eks_state, eks, MemoryScheduler(faults), ScalerSettings.from_env(env), faults)
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
            # A run cut off emits no metric at all (docs/operations.md says so): not compared.
            saved = first.gpu_node_hours_saved + retry.gpu_node_hours_saved
            if mode != "cut" and saved != clean_run.gpu_node_hours_saved:
                problems.append(f"{where}: GPU node-hours {saved} != {clean_run.gpu_node_hours_saved}")
    return Sweep(calls, problems), clean


def assert_allowed_by_rbac(calls: list[str]) -> None:
    """Every Kubernetes call of the sweep is one the scaler's Role allows (stacks/ops/rbac.py)."""
    allowed = {
        (verb, resource)
        for rule in OFFHOURS_SCALER_RULES
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    for call in calls:
        method, _, target = call.partition(" ")
        if method in ("GET", "PATCH"):
            assert (method.lower(), target.split("/")[0]) in allowed, call


def assert_documented(action: Action, calls: list[str], floor: int) -> None:
    """docs/operations.md says how many calls the sweep covers; keep it true."""
    counts = (rf"{len(calls)}", r"\d+") if floor == 0 else (r"\d+", rf"{len(calls)}")
    pattern = rf"`{action}` \({counts[0]} calls with a floor of 0, {counts[1]} with a floor of 1\)"
    assert re.search(pattern, " ".join(OPERATIONS_DOC.read_text().split())), (action, floor, len(calls))


def test_scale_down_survives_a_fault_at_every_call(world: World, floor: int) -> None:
    start = world.state()
    result, clean = sweep(world, "scale_down", start)
    # The clean run did the whole night: the sweep covered every kind of call it makes.
    assert clean["deployments"]["llama-v1"] == {"replicas": floor, "annotations": {RESTORE_ANNOTATION: "3"}}
    assert clean["nodegroups"]["gpu-spot"]["scaling"]["desiredSize"] == floor
    assert {call.split()[0] for call in result.calls} == {
        "GET",
        "PATCH",
        "describe_nodegroup",
        "tag_resource",
        "update_nodegroup_config",
    }
    assert_allowed_by_rbac(result.calls)
    assert not result.problems, "\n".join(result.problems)
    assert_documented("scale_down", result.calls, floor)


def test_scale_up_survives_a_fault_at_every_call(world: World, floor: int) -> None:
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
    assert_allowed_by_rbac(result.calls)
    assert not result.problems, "\n".join(result.problems)
    assert_documented("scale_up", result.calls, floor)


def test_the_fault_hooks_fail_before_or_lose_after_applying(world: World) -> None:
    """What the sweep relies on: "fail" changes nothing, "lose" changes the state and still fails."""

    def resize() -> None:
        world.eks.update_nodegroup_config(
            clusterName=CLUSTER, nodegroupName="gpu-spot", scalingConfig={"desiredSize": 5}
        )

    def book() -> None:
        world.scheduler.create_schedule(Name=ready_check.SCHEDULE_NAME, GroupName=GROUP)

    before = world.state()
    for mode, applied in (("fail", False), ("lose", True)):
        world.load(before)
        world.faults.arm(1, mode)  # call 0 reads llama-v1, call 1 patches it
        first = world.run("scale_down")
        assert world.faults.calls[1] == "PATCH deployments/llama-v1"
        assert first.changes[0].result == "failed"
        assert (world.state()["deployments"]["llama-v1"] != before["deployments"]["llama-v1"]) is applied
        for operation, call in (("update_nodegroup_config", resize), ("create_schedule", book)):
            world.load(before)
            world.faults.arm(0, mode)
            with pytest.raises((ClientError, ReadTimeoutError)):
                call()
            assert world.faults.calls[0].startswith(operation)
            assert (world.state() != before) is applied
