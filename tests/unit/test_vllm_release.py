"""Every vLLM flag, environment variable and metric name the project uses exists in the pinned release.

The facts come from the release's wheel (config/vllm_facts/<tag>.json, written by
tools/vllm_facts.py). Each stage's every model version is checked against the facts of its own
image tag; the metric names read by KEDA triggers, recording rules, alert rules and the dashboard
are checked against every tag the stage pins (a query must work on each version it serves).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from config import StageConfig, load_stages
from config.vllm_support import SPECULATIVE_CONFIG_KEYS, VllmFacts, facts_for
from k8s_charts.stage_charts import StageCharts
from k8s_charts.vllm_args import S3_LOAD_FORMAT, vllm_args
from observability.dashboard import grafana_dashboard
from observability.rules import alerting_rules, recording_rules
from tests.templates import of_kind
from tests.unit.charts.helpers import charts_for
from tests.unit.observability.metrics import exported_metrics, metric_names

STAGES = load_stages()
# Series vLLM's own process exposes: its `vllm:` families and the HTTP server's instrumentator.
VLLM_SERIES_PREFIXES = ("vllm:", "http_request")
# Pod variables read by something other than vLLM's envs.py, with who reads them.
NON_VLLM_ENV = {
    "AWS_REGION": "boto3 / the Run:ai S3 client",
    "HOME": "every library that defaults a cache under ~",
    "XDG_CACHE_HOME": "torch, triton and vLLM's default cache roots",
    "HF_HOME": "huggingface_hub",
    "TRITON_CACHE_DIR": "triton",
    "USER": "getpass.getuser() in torch",
    "OTEL_SERVICE_NAME": "the OpenTelemetry SDK's Resource.create() (vLLM's tracer)",
}


@pytest.fixture(scope="module", params=list(STAGES))
def stage(request: pytest.FixtureRequest) -> tuple[StageConfig, StageCharts]:
    config = STAGES[request.param]
    return config, charts_for(config)


def _versions(config: StageConfig) -> list[tuple[str, Any]]:
    return [(f"{model.id}-{version.name}", version) for model in config.models for version in model.versions]


def _flags(args: list[str]) -> list[str]:
    return [arg.split("=", 1)[0] for arg in args if arg.startswith("--")]


def test_every_generated_flag_exists_in_the_pinned_release(stage: tuple[StageConfig, StageCharts]) -> None:
    config, charts = stage
    for instance, version in _versions(config):
        facts = facts_for(version.image_tag)
        main = of_kind(charts.endpoints[instance], "Deployment")["spec"]["template"]["spec"]["containers"][0]
        assert main["command"] == ["vllm", "serve"]
        unknown = [flag for flag in _flags(main["args"]) if flag not in facts.serve_flags]
        assert not unknown, f"{instance}: {unknown} are not flags of vllm serve {version.image_tag}"
        assert _flags(main["args"]) == _flags(vllm_args(version, model_bucket_name="b"))


def test_every_pod_environment_variable_is_read_by_the_release(
    stage: tuple[StageConfig, StageCharts],
) -> None:
    config, charts = stage
    for instance, version in _versions(config):
        facts = facts_for(version.image_tag)
        main = of_kind(charts.endpoints[instance], "Deployment")["spec"]["template"]["spec"]["containers"][0]
        for name in (item["name"] for item in main["env"]):
            if name.startswith("VLLM_"):
                assert name in facts.env_vars, (
                    f"{instance}: {name} is not in vllm/envs.py of {version.image_tag}"
                )
            elif name.startswith("RUNAI_STREAMER_"):
                assert name in facts.runai_streamer_env, f"{instance}: {name} unknown to the Run:ai loader"
            elif name in facts.env_read_by_code:
                continue  # read directly by vLLM code (e.g. DO_NOT_TRACK in vllm/usage/usage_lib.py)
            else:
                assert name in NON_VLLM_ENV, f"{instance}: {name} is read by nothing we know of"


def test_speculative_config_keys_and_load_format_exist(stage: tuple[StageConfig, StageCharts]) -> None:
    config, _ = stage
    for instance, version in _versions(config):
        facts = facts_for(version.image_tag)
        assert set(SPECULATIVE_CONFIG_KEYS) <= facts.speculative_config_keys, instance
        assert S3_LOAD_FORMAT in facts.load_formats, instance
        args = vllm_args(version, model_bucket_name="b")
        if "--speculative-config" in args:
            written = json.loads(args[args.index("--speculative-config") + 1])
            assert set(written) <= facts.speculative_config_keys, instance
            assert written["method"] in facts.speculative_methods, instance


def test_the_image_can_export_traces() -> None:
    # vLLM refuses --otlp-traces-endpoint when the OpenTelemetry SDK is missing
    # (vllm/config/observability.py); in v0.33.0 it is an unconditional requirement of the wheel.
    for config in STAGES.values():
        for _, version in _versions(config):
            assert facts_for(version.image_tag).otel_sdk_in_image


def _stage_facts(config: StageConfig) -> list[VllmFacts]:
    return [facts_for(tag) for tag in sorted({version.image_tag for _, version in _versions(config)})]


def _vllm_series(expr: str) -> set[str]:
    return {name for name in metric_names(expr) if name.startswith(VLLM_SERIES_PREFIXES)}


def _assert_in_every_release(config: StageConfig, names: set[str], where: str) -> None:
    for facts in _stage_facts(config):
        missing = names - facts.metric_names
        assert not missing, f"{where} reads {sorted(missing)}, not exposed by vLLM {facts.image_tag}"


def test_keda_triggers_read_metrics_the_release_exposes(stage: tuple[StageConfig, StageCharts]) -> None:
    config, charts = stage
    for instance, _ in _versions(config):
        for trigger in of_kind(charts.endpoints[instance], "ScaledObject")["spec"]["triggers"]:
            names = _vllm_series(trigger["metadata"]["query"])
            assert names, f"{instance} trigger {trigger['name']} reads no vLLM metric"
            _assert_in_every_release(config, names, f"{instance} trigger {trigger['name']}")


def test_recording_and_alert_rules_read_metrics_the_release_exposes(
    stage: tuple[StageConfig, StageCharts],
) -> None:
    config, _ = stage
    alerts = alerting_rules(
        models=list(config.models),
        observability=config.observability,
        runbook_base_url=config.observability.runbook_base_url,
    )
    read = 0
    for document in (recording_rules(), alerts):
        for group in document["groups"]:
            for rule in group["rules"]:
                names = _vllm_series(rule["expr"])
                read += len(names)
                _assert_in_every_release(config, names, rule.get("record") or rule.get("alert") or "?")
    assert read > 0


def test_dashboard_reads_metrics_the_release_exposes(stage: tuple[StageConfig, StageCharts]) -> None:
    config, _ = stage
    dashboard = grafana_dashboard(config)
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            names = _vllm_series(target["expr"].replace("$model_id", ".*"))
            _assert_in_every_release(config, names, f"dashboard panel {panel['title']!r}")


def test_the_vendored_vllm_metric_list_matches_the_release() -> None:
    # tests/data/exported_metrics.yaml feeds the rule and dashboard tests; its vllm entry must not
    # list a series the pinned release does not expose.
    vendored = exported_metrics()["vllm"]
    for config in STAGES.values():
        for facts in _stage_facts(config):
            assert vendored <= facts.metric_names, sorted(vendored - facts.metric_names)
