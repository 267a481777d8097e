"""Spot interruption handler against moto (EC2, STS) and the HTTPS Kubernetes fake."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError
from k8s_fake import FakeKubernetes, make_node, make_pod
from lambda_fakes import LambdaContextStub, iso, load_event

from lambdas.common.clients import aws_client
from lambdas.common.eks_token import TokenProvider
from lambdas.common.k8s import (
    ForbiddenError,
    K8sClient,
    UnauthorizedError,
    UnreachableError,
    ssl_context_from_ca_data,
)
from lambdas.spot_interruption import handler as spot_handler
from lambdas.spot_interruption.events import parse_event
from lambdas.spot_interruption.node import TAINT_KEYS
from lambdas.spot_interruption.respond import Summary, respond
from lambdas.spot_interruption.settings import SpotSettings

INTERRUPTION_KEY = TAINT_KEYS["interruption"]
REBALANCE_KEY = TAINT_KEYS["rebalance"]


@dataclass
class Spot:
    k8s: FakeKubernetes
    instance_id: str
    node: str
    az: str

    def event(self, name: str = "spot_interruption_warning.json", age: float = 1.0) -> Any:
        return load_event(name, time=iso(time.time() - age), detail={"instance-id": self.instance_id})

    def node_obj(self) -> dict[str, Any]:
        # Typed local: `mypy lambdas tests/unit/lambdas` cannot see tests/k8s_fake (Any there).
        node: dict[str, Any] = self.k8s.nodes[self.node]
        return node

    def our_taints(self) -> list[dict[str, str]]:
        return [t for t in self.node_obj()["spec"].get("taints", []) if "llm-inference" in t["key"]]


def _signed_for_cluster(token: str) -> bool:
    body = token.removeprefix("k8s-aws-v1.")
    url = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    return "Action=GetCallerIdentity" in url and "x-k8s-aws-id" in url


@pytest.fixture
def spot(aws: None, cluster_env: FakeKubernetes) -> Spot:
    run = aws_client("ec2").run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        Placement={"AvailabilityZone": "us-east-1b"},
    )
    instance = run["Instances"][0]
    k8s = cluster_env
    k8s.token_check = _signed_for_cluster  # only a real EKS token gets in
    node = instance["PrivateDnsName"]
    k8s.add_node(make_node(node, instance["InstanceId"], az="us-east-1b"))
    k8s.add_node(make_node("other-node", "i-0aaaaaaaaaaaaaaaa", az="us-east-1b"))
    return Spot(k8s, instance["InstanceId"], node, "us-east-1b")


def invoke(event: Any, context: LambdaContextStub) -> dict[str, Any]:
    result: dict[str, Any] = spot_handler.handler(event, context)
    return result


def add_pods(spot: Spot, count: int, **kwargs: Any) -> list[str]:
    names = [f"model-{i}" for i in range(count)]
    for name in names:
        spot.k8s.add_pod(make_pod(name, spot.node), **kwargs)
    return names


def stdout_json(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """EMF metric blobs: Powertools prints them to stdout when the handler returns."""
    lines = capsys.readouterr().out.splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def metric(emf: dict[str, Any], name: str) -> float:
    """An EMF value; Powertools writes a list when a metric has several values."""
    value = emf[name]
    return float(sum(value) if isinstance(value, list) else value)


@pytest.fixture
def logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The handler's structured log lines (its handler's stream was bound at import)."""
    buffer = io.StringIO()
    stream_handler = spot_handler.logger.registered_handler
    assert isinstance(stream_handler, logging.StreamHandler)
    previous = stream_handler.setStream(buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    stream_handler.setStream(previous)


# -- finding the node ------------------------------------------------------------------


def test_node_is_matched_by_provider_id_not_by_name(spot: Spot, context: LambdaContextStub) -> None:
    # A node carrying the instance's DNS name but another providerID is a decoy.
    real = spot.k8s.nodes.pop(spot.node)
    real["metadata"]["name"] = "renamed-node"
    spot.k8s.add_node(real)
    spot.k8s.add_node(make_node(spot.node, "i-0bbbbbbbbbbbbbbbb", az=spot.az))
    result = invoke(spot.event(), context)
    assert result["node"] == "renamed-node"
    assert spot.k8s.nodes["renamed-node"]["spec"]["unschedulable"] is True
    assert "unschedulable" not in spot.k8s.nodes[spot.node]["spec"]


def test_instance_not_in_cluster_is_counted_and_succeeds(
    spot: Spot, context: LambdaContextStub, capsys: pytest.CaptureFixture[str]
) -> None:
    del spot.k8s.nodes[spot.node]
    result = invoke(spot.event(), context)
    assert result["status"] == "not_a_cluster_node"
    assert not spot.k8s.calls_matching("PATCH", "/nodes/")
    emf = [line for line in stdout_json(capsys) if "_aws" in line]
    assert emf[-1]["Events_not_a_cluster_node"] == [1.0] or emf[-1]["Events_not_a_cluster_node"] == 1


def test_instance_unknown_to_ec2_is_not_a_cluster_node(spot: Spot, context: LambdaContextStub) -> None:
    event = spot.event()
    event["detail"] = {"instance-id": "i-0123456789abcdef0"}
    assert invoke(event, context)["status"] == "not_a_cluster_node"


# -- cordon and taint ------------------------------------------------------------------


def test_cordon_comes_before_a_noschedule_taint_naming_reason_and_event(
    spot: Spot, context: LambdaContextStub
) -> None:
    event = spot.event()
    invoke(event, context)
    node_patches = [body for path, body in spot.k8s.patches if path.endswith(spot.node)]
    assert node_patches[0] == {"spec": {"unschedulable": True}}
    assert node_patches[1]["spec"]["taints"] == [
        {"key": INTERRUPTION_KEY, "value": event["id"], "effect": "NoSchedule"}
    ]
    assert spot.node_obj()["spec"]["unschedulable"] is True


def test_a_warning_event_is_recorded_on_the_node_once(spot: Spot, context: LambdaContextStub) -> None:
    event = spot.event()
    invoke(event, context)
    invoke(event, context)  # a duplicate does not add a second Event
    assert len(spot.k8s.events) == 1
    recorded = spot.k8s.events[0]
    assert recorded["involvedObject"]["kind"] == "Node"
    assert recorded["involvedObject"]["name"] == spot.node
    assert recorded["reason"] == "SpotInterruption"
    assert event["id"] in recorded["message"]


def test_a_failed_node_event_does_not_stop_the_drain(spot: Spot, context: LambdaContextStub) -> None:
    add_pods(spot, 2)
    spot.k8s.failures[("POST", "/api/v1/namespaces/default/events")] = 403
    result = invoke(spot.event(), context)
    assert result["evicted"] == 2
    assert "403" in result["node_event_error"]


def test_taint_keeps_existing_taints(spot: Spot, context: LambdaContextStub) -> None:
    gpu = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
    spot.node_obj()["spec"]["taints"] = [gpu]
    invoke(spot.event(), context)
    assert spot.node_obj()["spec"]["taints"][0] == gpu
    assert len(spot.node_obj()["spec"]["taints"]) == 2


def test_already_cordoned_and_tainted_node_is_not_an_error(spot: Spot, context: LambdaContextStub) -> None:
    taint = {"key": INTERRUPTION_KEY, "value": "earlier-event", "effect": "NoSchedule"}
    spot.node_obj()["spec"].update(unschedulable=True, taints=[taint])
    result = invoke(spot.event(), context)
    assert result["status"] == "ok"
    assert result["cordoned"] is False
    assert result["tainted"] is False
    assert spot.k8s.patches == []


def test_409_on_node_patch_is_retried(spot: Spot, context: LambdaContextStub) -> None:
    spot.k8s.conflicts[f"/api/v1/nodes/{spot.node}"] = 2
    result = invoke(spot.event(), context)
    assert result["status"] == "ok"
    assert spot.node_obj()["spec"]["unschedulable"] is True
    assert len(spot.our_taints()) == 1
    assert len(spot.k8s.calls_matching("PATCH", f"/nodes/{spot.node}$")) == 4


# -- drain -----------------------------------------------------------------------------


def test_daemonset_mirror_and_finished_pods_are_skipped_emptydir_evicted(
    spot: Spot, context: LambdaContextStub
) -> None:
    add = spot.k8s.add_pod
    add(make_pod("ds", spot.node, namespace="kube-system", owner_kind="DaemonSet"))
    add(make_pod("static", spot.node, namespace="kube-system", owner_kind="Node", mirror=True))
    add(make_pod("done", spot.node, phase="Succeeded"))
    add(make_pod("failed", spot.node, owner_kind="Job", phase="Failed"))
    add(make_pod("scratch", spot.node, empty_dir=True))
    add(make_pod("bare", spot.node, owner_kind=None))
    add(make_pod("elsewhere", "other-node"))
    result = invoke(spot.event(), context)
    assert result["skipped_pods"] == {
        "kube-system/ds": "daemonset",
        "kube-system/static": "mirror",
        "models/done": "finished",
        "models/failed": "finished",
    }
    assert result["evicted"] == 2
    assert set(spot.k8s.pods) == {
        ("kube-system", "ds"),
        ("kube-system", "static"),
        ("models", "done"),
        ("models", "failed"),
        ("models", "elsewhere"),
    }


def test_evictions_use_policy_v1_and_run_in_parallel(spot: Spot, context: LambdaContextStub) -> None:
    add_pods(spot, 20)
    spot.k8s.latency = 0.03
    started = time.monotonic()
    result = invoke(spot.event(), context)
    elapsed = time.monotonic() - started
    assert result["evicted"] == 20
    assert len(spot.k8s.calls_matching("POST", r"/pods/model-\d+/eviction$")) == 20
    assert spot.k8s.max_in_flight >= 8
    assert elapsed < 20 * 0.03  # one at a time would take at least this long


def test_pdb_429_is_retried_with_backoff_until_allowed(spot: Spot, context: LambdaContextStub) -> None:
    spot.k8s.add_pod(make_pod("guarded", spot.node), pdb_429s=2)
    result = invoke(spot.event(), context)
    assert result["evicted"] == 1
    assert result["eviction_retries"] == 2
    assert len(spot.k8s.calls_matching("POST", "/guarded/eviction")) == 3


def test_pdb_429_until_deadline_stops_before_it_and_reports_pending(
    spot: Spot, context: LambdaContextStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRAIN_SAFETY_SECONDS", "10")
    add_pods(spot, 3)
    spot.k8s.add_pod(make_pod("guarded", spot.node), pdb_429s=10_000)
    # 120 s notice - 106 s - 10 s safety: ~4 s left, room for three evictions on a loaded CI machine.
    event = spot.event(age=106)
    deadline = time.time() - 106 + 120
    result = invoke(event, context)
    assert time.time() < deadline - 10 + 0.5
    assert result["status"] == "incomplete"
    assert result["evicted"] == 3
    assert list(result["pending_pods"]) == ["models/guarded"]
    assert "429" in result["pending_pods"]["models/guarded"]
    assert result["seconds_to_deadline"] >= 10 - 0.5


def test_a_lambda_timeout_shorter_than_the_notice_still_ends_with_a_summary(
    spot: Spot, context: LambdaContextStub
) -> None:
    spot.k8s.add_pod(make_pod("guarded", spot.node), pdb_429s=10_000)
    context.remaining_ms = 4_000  # 3 s are kept for the summary: ~1 s of retries
    started = time.monotonic()
    result = invoke(spot.event(), context)
    assert time.monotonic() - started < 1.5
    assert list(result["pending_pods"]) == ["models/guarded"]
    assert result["seconds_to_deadline"] > 100  # the event's own deadline was far away


def test_404_on_eviction_means_already_gone(spot: Spot, context: LambdaContextStub) -> None:
    add_pods(spot, 2)
    spot.k8s.failures[("POST", "/api/v1/namespaces/models/pods/model-0/eviction")] = 404
    result = invoke(spot.event(), context)
    assert result["status"] == "ok"
    assert result["already_gone"] == 1
    assert result["evicted"] == 1
    assert result["failed"] == 0


def test_500_on_eviction_is_logged_per_pod_and_counted(spot: Spot, context: LambdaContextStub) -> None:
    add_pods(spot, 3)
    spot.k8s.failures[("POST", "/api/v1/namespaces/models/pods/model-1/eviction")] = 500
    result = invoke(spot.event(), context)
    assert result["status"] == "incomplete"
    assert result["failed"] == 1
    assert "500" in result["failed_pods"]["models/model-1"]
    assert result["evicted"] == 2


# -- idempotency -----------------------------------------------------------------------


def test_duplicate_event_does_no_harm(spot: Spot, context: LambdaContextStub) -> None:
    add_pods(spot, 5)
    event = spot.event()
    first = invoke(event, context)
    patches_after_first = len(spot.k8s.patches)
    second = invoke(event, context)
    assert first["evicted"] == 5
    assert second["status"] == "ok"
    assert second["evicted"] == 0
    assert len(spot.k8s.patches) == patches_after_first
    assert len(spot.our_taints()) == 1


def test_concurrent_events_for_one_instance_evict_each_pod_once(spot: Spot) -> None:
    # Two invocations in separate containers: run the logic twice in parallel, same cluster.
    add_pods(spot, 30)
    spot.k8s.latency = 0.005
    settings = SpotSettings.from_env(os.environ)
    results: list[Summary] = []

    def run() -> None:
        event = parse_event(spot.event(), now=time.time(), safety_seconds=10)
        k8s = K8sClient(
            settings.cluster.endpoint,
            ssl_context_from_ca_data(settings.cluster.ca_data),
            TokenProvider(lambda: aws_client("sts"), "c"),
        )
        ec2 = aws_client("ec2")
        results.append(respond(event, "drain", ec2=ec2, k8s=k8s, concurrency=8, safety_seconds=10))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [len(r.failed) for r in results] == [0, 0]
    assert sum(r.evicted for r in results) == 30
    assert spot.k8s.pods == {}
    assert len(spot.our_taints()) == 1


# -- rejected events and API failures ---------------------------------------------------


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda e: e.pop("detail"), id="missing-detail"),
        pytest.param(lambda e: e.update(detail={"instance-id": "bogus"}), id="bad-instance-id"),
        pytest.param(lambda e: e.update({"detail-type": "Something else"}), id="unknown-type"),
        pytest.param(lambda e: e.update(time="2021-02-03T14:05:02Z"), id="stale"),
    ],
)
def test_rejected_events_make_no_kubernetes_call(
    spot: Spot, context: LambdaContextStub, logs: Callable[[], list[dict[str, Any]]], mutate: Any
) -> None:
    event = spot.event()
    mutate(event)
    result = invoke(event, context)
    assert result["status"] == "rejected"
    assert spot.k8s.calls == []
    rejected = [line for line in logs() if line.get("message") == "event rejected"]
    assert rejected[0]["level"] == "ERROR"
    assert rejected[0]["reason"] == result["reason"]


def test_forbidden_is_logged_and_raised_for_retry(
    spot: Spot, context: LambdaContextStub, logs: Callable[[], list[dict[str, Any]]]
) -> None:
    spot.k8s.forbidden = True
    with pytest.raises(ForbiddenError):
        invoke(spot.event(), context)
    failure = [line for line in logs() if "API failure" in str(line.get("message"))]
    assert "403" in failure[0]["cause"]
    assert failure[0]["instance_id"] == spot.instance_id


def test_forbidden_eviction_stops_the_drain_and_raises(spot: Spot, context: LambdaContextStub) -> None:
    add_pods(spot, 3)
    for i in range(3):
        spot.k8s.failures[("POST", f"/api/v1/namespaces/models/pods/model-{i}/eviction")] = 403
    with pytest.raises(ForbiddenError):
        invoke(spot.event(), context)


def test_unreachable_endpoint_is_raised(
    spot: Spot, context: LambdaContextStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    spot.k8s.stop()
    with pytest.raises(UnreachableError):
        invoke(spot.event(), context)


def test_rejected_token_is_raised_after_one_refresh(spot: Spot, context: LambdaContextStub) -> None:
    spot.k8s.reject_tokens = 2
    with pytest.raises(UnauthorizedError):
        invoke(spot.event(), context)
    assert len(spot.k8s.calls) == 2  # the first call, then once more with a new token


def test_ec2_throttling_is_raised(
    spot: Spot, context: LambdaContextStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    class ThrottledEc2:
        def describe_instances(self, **_: Any) -> Any:
            error = {"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}}
            raise ClientError(error, "DescribeInstances")  # type: ignore[arg-type]

    monkeypatch.setattr(spot_handler, "aws_client", lambda s: ThrottledEc2() if s == "ec2" else aws_client(s))
    with pytest.raises(ClientError, match="RequestLimitExceeded"):
        invoke(spot.event(), context)
    assert spot.k8s.calls == []


def test_missing_cluster_settings_raise(
    spot: Spot, context: LambdaContextStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLUSTER_ENDPOINT")
    with pytest.raises(ValueError, match="CLUSTER_ENDPOINT"):
        invoke(spot.event(), context)


# -- rebalance recommendations -----------------------------------------------------------


def test_rebalance_ignore_touches_nothing(
    spot: Spot, context: LambdaContextStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REBALANCE_ACTION", "ignore")
    add_pods(spot, 2)
    result = invoke(spot.event("rebalance_recommendation.json"), context)
    assert result["status"] == "ignored"
    assert spot.k8s.calls == []


def test_rebalance_cordon_is_the_default_and_does_not_evict(spot: Spot, context: LambdaContextStub) -> None:
    add_pods(spot, 2)
    result = invoke(spot.event("rebalance_recommendation.json"), context)
    assert result["action"] == "cordon"
    assert spot.node_obj()["spec"]["unschedulable"] is True
    assert [t["key"] for t in spot.our_taints()] == [REBALANCE_KEY]
    assert spot.k8s.calls_matching("POST", "/eviction") == []
    assert len(spot.k8s.pods) == 2


def test_rebalance_drain_evicts(
    spot: Spot, context: LambdaContextStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REBALANCE_ACTION", "drain")
    add_pods(spot, 2)
    result = invoke(spot.event("rebalance_recommendation.json"), context)
    assert result["evicted"] == 2
    assert spot.k8s.pods == {}


# -- summary -----------------------------------------------------------------------------


def test_summary_is_returned_logged_and_emitted_as_metrics(
    spot: Spot,
    context: LambdaContextStub,
    capsys: pytest.CaptureFixture[str],
    logs: Callable[[], list[dict[str, Any]]],
) -> None:
    add_pods(spot, 2)
    result = invoke(spot.event(), context)
    for key in ("node", "action", "evicted", "skipped", "failed", "pending", "seconds_used"):
        assert key in result
    summary = next(line for line in logs() if line.get("message") == "summary")
    assert summary["summary"] == result
    assert summary["event_id"] == result["event_id"]
    assert summary["node_name"] == spot.node
    emf = next(line for line in stdout_json(capsys) if "_aws" in line)
    assert metric(emf, "Pods_evicted") == 2.0
