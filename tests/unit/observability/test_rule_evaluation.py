"""The generated rules, evaluated by promtool on synthetic series.

A scripted normal day (morning scale-from-zero, a Spot drain at peak, a canary rollout, the
off-hours pause) raises no alert but the Watchdog; each failure raises exactly its alert.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from config import load_stages
from config.serving import ModelConfig
from contract.kubernetes import SPOT_INTERRUPTION_TAINT_KEY
from observability.rules import alerting_rules, recording_rules
from observability.slo import slo_recording_rules
from tests.unit.observability import promtool
from tests.unit.observability.promtool import Scenario, Values, counter, gauge

PROD = load_stages()["prod"]
SMALL, LARGE = (model.id for model in PROD.models)
WATCHDOG = {"Watchdog": [{"severity": "none"}]}


def _with_canary(model: ModelConfig) -> ModelConfig:
    """The prod 8B model with a v2 canary at 10% (what a rollout commits to config)."""
    data = model.model_dump(mode="json")
    stable = data["versions"][0]
    data["versions"] = [{**stable, "weight": 90}, {**stable, "name": "v2", "weight": 10}]
    return ModelConfig.model_validate(data)


MODELS = [_with_canary(PROD.models[0]), *PROD.models[1:]]


def _rules() -> dict[str, dict[str, Any]]:
    return {
        "recording": recording_rules(),
        "slo": slo_recording_rules(MODELS),
        "alerting": alerting_rules(
            models=MODELS, observability=PROD.observability, runbook_base_url="https://runbooks.example/o.md"
        ),
    }


Timeline = Callable[[int], float | None]


def _const(value: float | None) -> Timeline:
    return lambda _t: value


NO_PODS, NONE, ONE_IN_FIFTY = _const(None), _const(0.0), _const(0.02)
ALWAYS: Callable[[int], bool] = lambda _t: True  # noqa: E731
NEVER: Callable[[int], bool] = lambda _t: False  # noqa: E731
GPU = _const(1.0)


@dataclass
class World:
    """Builds the series one cluster exports: kube-state-metrics, vLLM, DCGM."""

    minutes: int

    def __post_init__(self) -> None:
        self.series: dict[str, Values] = {'up{job="kube-state-metrics"}': gauge(self.minutes, _const(1))}

    def add(self, selector: str, values: Values) -> None:
        self.series[selector] = values

    def version(
        self,
        model_id: str,
        version: str,
        *,
        spec: Timeline,
        ready: Timeline,
        rps: Timeline = NO_PODS,
        errors: Timeline = NONE,
        slow: Timeline = ONE_IN_FIFTY,
        queue: Timeline = NONE,
        scraped: Timeline | None = None,
        desired: Timeline | None = None,
        max_replicas: int = 12,
    ) -> None:
        """One model version; ``rps`` None means no vLLM pod serves (no vLLM series)."""
        n = self.minutes
        dep = f"{model_id}-{version}"
        model = f'namespace="models", model_id="{model_id}", model_version="{version}"'

        def per_minute(share: Timeline) -> Timeline:
            def value(t: int) -> float | None:
                rate = rps(t)
                return None if rate is None else rate * 60 * (share(t) or 0.0)

            return value

        def serving(t: int) -> float | None:
            return None if rps(t) is None else 1.0

        def succeeded(t: int) -> float:
            return 1 - (errors(t) or 0.0)

        def fast(t: int) -> float:
            return 1 - (slow(t) or 0.0)

        def within_bucket_2_5(t: int) -> float:
            return 1 - (slow(t) or 0.0) / 2

        ok = per_minute(succeeded)
        self.add(
            f'http_requests_total{{{model}, handler="/v1/chat/completions", status="2xx"}}', counter(n, ok)
        )
        self.add(
            f'http_requests_total{{{model}, handler="/v1/chat/completions", status="5xx"}}',
            counter(n, per_minute(errors)),
        )
        self.add(
            f'vllm:time_to_first_token_seconds_bucket{{{model}, le="1.0"}}',
            counter(n, per_minute(fast)),
        )
        self.add(
            f'vllm:time_to_first_token_seconds_bucket{{{model}, le="2.5"}}',
            counter(n, per_minute(within_bucket_2_5)),
        )
        self.add(f"vllm:time_to_first_token_seconds_count{{{model}}}", counter(n, per_minute(_const(1.0))))
        self.add(
            f'vllm:num_requests_waiting{{{model}, pod="{dep}-0"}}',
            gauge(n, lambda t: queue(t) if serving(t) else None),
        )

        def pods_exist(t: int) -> bool:
            return (spec(t) or 0) > 0

        self.add(
            f'up{{job="vllm", {model}, pod="{dep}-0"}}',
            gauge(n, scraped or (lambda t: None if not pods_exist(t) else (1.0 if serving(t) else 0.0))),
        )
        deployment = f'namespace="models", deployment="{dep}"'
        self.add(f"kube_deployment_spec_replicas{{{deployment}}}", gauge(n, spec))
        self.add(f"kube_deployment_status_replicas_available{{{deployment}}}", gauge(n, ready))
        pod = f'namespace="models", pod="{dep}-0"'
        self.add(
            f'kube_pod_status_ready{{{pod}, condition="true"}}',
            gauge(n, lambda t: None if not pods_exist(t) else float((ready(t) or 0) > 0)),
        )
        self.add(
            f'kube_pod_labels{{{pod}, label_app_kubernetes_io_name="vllm", '
            f'label_llm_inference_model_id="{model_id}", label_llm_inference_model_version="{version}"}}',
            gauge(n, lambda t: 1.0 if pods_exist(t) else None),
        )
        hpa = f'namespace="models", horizontalpodautoscaler="keda-hpa-{dep}"'
        self.add(f"kube_horizontalpodautoscaler_status_desired_replicas{{{hpa}}}", gauge(n, desired or spec))
        self.add(f"kube_horizontalpodautoscaler_spec_max_replicas{{{hpa}}}", gauge(n, _const(max_replicas)))

    def gpu_node(
        self,
        node: str,
        *,
        exists: Callable[[int], bool],
        ready: Callable[[int], bool] = ALWAYS,
        gpus: Timeline = GPU,
        xid: Timeline = NONE,
        cordoned: Callable[[int], bool] = NEVER,
        spot_tainted: Callable[[int], bool] = NEVER,
    ) -> None:
        n = self.minutes

        def when(value: Timeline) -> Values:
            return gauge(n, lambda t: value(t) if exists(t) else None)

        self.add(
            f'kube_node_labels{{node="{node}", label_llm_inference_gpu_model="a10g"}}', when(_const(1.0))
        )
        self.add(
            f'kube_node_status_condition{{node="{node}", condition="Ready", status="true"}}',
            when(lambda t: float(ready(t))),
        )
        self.add(f'kube_node_status_allocatable{{node="{node}", resource="nvidia_com_gpu"}}', when(gpus))
        self.add(f'kube_node_spec_unschedulable{{node="{node}"}}', when(lambda t: float(cordoned(t))))
        self.add(f'DCGM_FI_DEV_XID_ERRORS{{node="{node}", gpu="0"}}', when(xid))
        self.add(
            f'kube_node_spec_taint{{node="{node}", key="{SPOT_INTERRUPTION_TAINT_KEY}", '
            'effect="NoSchedule"}',
            gauge(n, lambda t: 1.0 if exists(t) and spot_tainted(t) else None),
        )

    def unschedulable_gpu_pod(self, pod: str, *, pending: Callable[[int], bool]) -> None:
        selector = f'namespace="models", pod="{pod}"'
        self.add(
            f"kube_pod_status_unschedulable{{{selector}}}",
            gauge(self.minutes, lambda t: 1.0 if pending(t) else None),
        )
        self.add(
            f"kube_pod_container_resource_requests{{{selector}, "
            'container="vllm", resource="nvidia_com_gpu"}',
            gauge(self.minutes, lambda t: 1.0 if pending(t) else None),
        )


def _between(start: int, end: int) -> Callable[[int], bool]:
    return lambda t: start <= t < end


# The normal day, in minutes from 05:00 (the stage is paused with a floor of zero until 06:00).
MORNING, LOADED, PEAK, DRAIN, CANARY, CANARY_READY, PAUSE, DAY_END = 60, 78, 300, 420, 600, 619, 1080, 1200


def _normal_day() -> Scenario:
    world = World(DAY_END)
    day = _between(MORNING, PAUSE)

    def v1_rps(t: int) -> float | None:
        if not LOADED <= t < PAUSE:
            return None
        return 20.0 if PEAK <= t < PEAK + 180 else 5.0

    world.version(
        SMALL,
        "v1",
        spec=lambda t: (6.0 if PEAK <= t < PEAK + 180 else 2.0) if day(t) else 0.0,
        ready=lambda t: (2.0 if t >= LOADED else 0.0) if day(t) else 0.0,
        rps=v1_rps,
        # A Spot drain at peak: two minutes of 503s from the drained replica's in-flight requests.
        errors=lambda t: 0.08 if DRAIN <= t < DRAIN + 2 else 0.0003,
        # ... and slower first tokens while the survivors absorb its share.
        slow=lambda t: 0.4 if DRAIN <= t < DRAIN + 4 else 0.02,
        # The morning queue and the peak's first minutes, while KEDA scales out (not at max).
        queue=lambda t: 14.0 if LOADED <= t < LOADED + 10 or PEAK <= t < PEAK + 12 else 1.0,
    )
    canary = _between(CANARY, PAUSE)
    world.version(
        SMALL,
        "v2",
        spec=lambda t: 1.0 if canary(t) else 0.0,
        ready=lambda t: 1.0 if CANARY_READY <= t < PAUSE else 0.0,
        rps=lambda t: 0.5 if CANARY_READY <= t < PAUSE else None,
        # A canary's first requests: 2 errors in 30 requests, far too few to judge a 99.9% SLO.
        errors=lambda t: 0.07 if CANARY_READY <= t < CANARY_READY + 2 else 0.0,
    )
    world.gpu_node("n1", exists=day, ready=lambda t: t >= MORNING + 4, gpus=lambda t: float(t >= MORNING + 6))
    world.gpu_node("n2", exists=_between(MORNING, DRAIN + 6), spot_tainted=lambda t: t >= DRAIN)
    world.gpu_node("n3", exists=_between(DRAIN + 5, PAUSE), ready=lambda t: t >= DRAIN + 9)
    world.unschedulable_gpu_pod(f"{SMALL}-v1-0", pending=_between(MORNING, MORNING + 5))
    # The drained pod waits for the Spot group to fail and the on-demand group to add a node.
    world.unschedulable_gpu_pod(f"{SMALL}-v1-1", pending=_between(DRAIN, DRAIN + 16))
    scenario = Scenario("normal day", series=world.series)
    for minute in range(0, DAY_END, 10):
        scenario.expect(minute, **WATCHDOG)
    return scenario


def _steady(minutes: int, **overrides: Any) -> World:
    """The 8B v1 serving 5 req/s on two ready replicas, healthy unless overridden."""
    world = World(minutes)
    settings: dict[str, Any] = {"spec": _const(2.0), "ready": _const(2.0), "rps": _const(5.0), **overrides}
    world.version(SMALL, "v1", **settings)
    world.gpu_node("n1", exists=lambda _t: True)
    return world


AVAILABILITY = {"namespace": "models", "model_id": SMALL, "slo": "availability"}
TTFT = {"namespace": "models", "model_id": SMALL, "slo": "ttft"}


def _fast_availability_burn() -> Scenario:
    world = _steady(180, errors=lambda t: 0.05 if t >= 120 else 0.0)
    scenario = Scenario("5% errors: fast burn pages", series=world.series)
    scenario.expect(115, **WATCHDOG)
    scenario.expect(
        145, **WATCHDOG, AvailabilityBudgetBurn=[{**AVAILABILITY, "severity": "critical", "window": "1h"}]
    )
    return scenario


def _slow_ttft_burn() -> Scenario:
    world = _steady(300, slow=lambda t: 0.5 if t >= 60 else 0.02)
    scenario = Scenario("half of first tokens slow: 6h burn pages, 3d burn tickets", series=world.series)
    scenario.expect(
        240,
        **WATCHDOG,
        TtftBudgetBurn=[
            {**TTFT, "severity": "critical", "window": "6h"},
            {**TTFT, "severity": "warning", "window": "3d"},
        ],
    )
    return scenario


def _low_traffic_errors() -> Scenario:
    world = World(180)
    # The 70B at 30 requests an hour with 10% errors: under the guard of 60 an hour, no alert.
    world.version(LARGE, "v1", spec=_const(1.0), ready=_const(1.0), rps=_const(0.5 / 60), errors=_const(0.1))
    scenario = Scenario("a low-traffic model's errors stay below the traffic guard", series=world.series)
    scenario.expect(150, **WATCHDOG)
    return scenario


def _metrics_path_down() -> Scenario:
    world = _steady(120, scraped=lambda t: 1.0 if t < 30 else 0.0)
    scenario = Scenario("vLLM targets stop answering while pods are ready", series=world.series)
    scenario.expect(25, **WATCHDOG)
    scenario.expect(
        45,
        **WATCHDOG,
        ModelMetricsAbsent=[{"namespace": "models", "model_id": SMALL, "severity": "critical"}],
    )
    return scenario


def _nothing_arrives() -> Scenario:
    """The scraper stops: every series ends. The Watchdog stops; KubeStateMetricsDown fires."""
    world = World(30)
    world.add(
        'up{job="vllm", namespace="models", model_id="x", model_version="v1", pod="p"}', gauge(30, _const(1))
    )
    scenario = Scenario("no metrics at all", series=world.series)
    scenario.expect(20, **WATCHDOG)
    scenario.expect(50, KubeStateMetricsDown=[{"severity": "critical"}])
    return scenario


def _stuck_startup() -> Scenario:
    world = _steady(60, ready=_const(0.0), rps=_const(None))
    scenario = Scenario("a version that never becomes ready", series=world.series)
    labels = {"namespace": "models", "deployment": f"{SMALL}-v1", "model_id": SMALL, "model_version": "v1"}
    scenario.expect(20, **WATCHDOG)  # still within the 20-minute startup budget
    scenario.expect(30, **WATCHDOG, NoReadyReplicas=[{**labels, "severity": "critical"}])
    return scenario


def _large_model_loading() -> Scenario:
    """The 70B (startup budget 40 minutes) loads for 38 minutes: no page while it loads."""
    world = World(60)
    world.version(
        LARGE,
        "v1",
        spec=_const(1.0),
        ready=lambda t: 1.0 if t >= 38 else 0.0,
        rps=lambda t: 1.0 if t >= 38 else None,
    )
    scenario = Scenario("a 70B version loading within its startup budget", series=world.series)
    for minute in (20, 30, 37, 44, 55):
        scenario.expect(minute, **WATCHDOG)
    return scenario


def _queue_at_max() -> Scenario:
    world = _steady(60, queue=_const(12.0), desired=_const(12.0))
    scenario = Scenario("queue above the limit with the autoscaler at max", series=world.series)
    labels = {"namespace": "models", "model_id": SMALL, "model_version": "v1", "severity": "warning"}
    scenario.expect(40, **WATCHDOG, HighQueueDepth=[labels])
    return scenario


def _gpu_faults() -> Scenario:
    world = _steady(60)
    world.gpu_node("n-xid79", exists=lambda _t: True, xid=_const(79.0))
    world.gpu_node("n-xid13", exists=lambda _t: True, xid=_const(13.0))
    world.gpu_node("n-xid79-cordoned", exists=lambda _t: True, xid=_const(79.0), cordoned=lambda _t: True)
    world.gpu_node("n-down", exists=lambda _t: True, ready=lambda _t: False)
    world.gpu_node("n-nogpu", exists=lambda _t: True, gpus=_const(0.0))
    world.unschedulable_gpu_pod("stuck", pending=lambda _t: True)
    scenario = Scenario("GPU node faults", series=world.series)
    scenario.expect(
        45,
        **WATCHDOG,
        GpuXidErrors=[{"node": "n-xid79", "gpu": "0", "severity": "warning"}],
        GpuNodeNotReady=[{"node": "n-down", "severity": "warning"}],
        GpuNodeWithoutGpus=[{"node": "n-nogpu", "severity": "warning"}],
        GpuPodsPending=[{"namespace": "models", "severity": "warning"}],
    )
    return scenario


def test_rule_files_pass_promtool_check_including_templates(tmp_path: Path) -> None:
    output = promtool.check_rules(tmp_path, _rules())
    assert output.count("SUCCESS") == 3, output


SCENARIOS = {
    "normal-day": _normal_day,
    "fast-availability-burn": _fast_availability_burn,
    "slow-ttft-burn": _slow_ttft_burn,
    "low-traffic": _low_traffic_errors,
    "metrics-path-down": _metrics_path_down,
    "nothing-arrives": _nothing_arrives,
    "stuck-startup": _stuck_startup,
    "large-model-loading": _large_model_loading,
    "queue-at-max": _queue_at_max,
    "gpu-faults": _gpu_faults,
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_raises_exactly_the_expected_alerts(tmp_path: Path, name: str) -> None:
    scenario = SCENARIOS[name]()
    assert scenario.expectations, name
    output = promtool.run(tmp_path, _rules(), [scenario])
    assert "SUCCESS" in output
