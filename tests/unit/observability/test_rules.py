"""The AMP rule files are valid Prometheus rule files whose expressions read metrics that exist."""

from __future__ import annotations

import re
from typing import Any

import promql_parser
import pytest
import yaml

from config import StageConfig
from contract.kubernetes import SPOT_INTERRUPTION_TAINT_KEY
from observability.rules import alerting_rules, recording_rules
from observability.slo import slo_recording_rules
from tests.synth import SynthResult
from tests.unit.observability.metrics import all_exported_metrics, metric_names

DURATION = re.compile(r"^\d+[smh]$")
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
REQUIRED_ALERTS = {
    "Watchdog",
    "KubeStateMetricsDown",
    "ModelMetricsAbsent",
    "AvailabilityBudgetBurn",
    "TtftBudgetBurn",
    "HighQueueDepth",
    "NoReadyReplicas",
    "KVCacheNearFull",
    "ModelPodsCrashLooping",
    "GpuXidErrors",
    "GpuNodeNotReady",
    "GpuNodeWithoutGpus",
    "GpuPodsPending",
    "SpotInterruptionsHigh",
    "SystemDeploymentUnavailable",
}
REQUIRED_RECORDINGS = {
    "model:vllm_http_requests:rate5m",
    "model:vllm_time_to_first_token_seconds:p50_5m",
    "model:vllm_time_to_first_token_seconds:p95_5m",
    "model:vllm_num_requests_waiting:sum",
    "model:vllm_generation_tokens:rate5m",
    "model:vllm_kv_cache_usage_perc:avg",
    "node:dcgm_gpu_utilization:avg",
}


def _alerting(config: StageConfig) -> dict[str, Any]:
    return alerting_rules(
        models=list(config.models),
        observability=config.observability,
        runbook_base_url=config.observability.runbook_base_url,
    )


def _rules(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in document["groups"] for rule in group["rules"]]


def _recorded_names(config: StageConfig | None = None) -> set[str]:
    documents = [recording_rules()] + ([slo_recording_rules(list(config.models))] if config else [])
    return {rule["record"] for document in documents for rule in _rules(document)}


@pytest.fixture
def config(synth: SynthResult, stage: str) -> StageConfig:
    return synth.configs[stage]


def test_rule_files_round_trip_as_yaml_with_unique_group_names(config: StageConfig) -> None:
    for document in (recording_rules(), _alerting(config)):
        parsed = yaml.safe_load(yaml.safe_dump(document))
        names = [group["name"] for group in parsed["groups"]]
        assert len(names) == len(set(names))
        assert all(group["rules"] for group in parsed["groups"])


def test_every_expression_is_valid_promql(config: StageConfig) -> None:
    for rule in _rules(recording_rules()) + _rules(_alerting(config)):
        assert rule["expr"].strip()
        promql_parser.parse(rule["expr"])  # raises on a syntax error


def test_recording_rule_names_follow_the_level_metric_operation_convention() -> None:
    for name in _recorded_names():
        assert METRIC_NAME.match(name), name
        assert name.count(":") == 2, name
    assert _recorded_names() >= REQUIRED_RECORDINGS


def test_every_alert_has_severity_summary_runbook_and_duration(config: StageConfig) -> None:
    for rule in _rules(_alerting(config)):
        assert rule["labels"]["severity"] in {"critical", "warning", "none"}, rule["alert"]
        assert (rule["labels"]["severity"] == "none") == (rule["alert"] == "Watchdog"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["runbook_url"] == (
            f"{config.observability.runbook_base_url}#{rule['alert'].lower()}"
        )
        assert DURATION.match(rule["for"]), rule["alert"]


def test_the_required_alerts_exist(config: StageConfig) -> None:
    assert {rule["alert"] for rule in _rules(_alerting(config))} == REQUIRED_ALERTS


def test_rules_read_only_metrics_the_exporters_emit_or_rules_record(config: StageConfig) -> None:
    known = all_exported_metrics() | _recorded_names(config)
    slo = slo_recording_rules(list(config.models))
    for rule in _rules(recording_rules()) + _rules(slo) + _rules(_alerting(config)):
        unknown = metric_names(rule["expr"]) - known
        assert not unknown, f"{rule.get('alert') or rule.get('record')} reads {unknown}"


def test_recording_rules_read_only_exporter_metrics() -> None:
    """Recording rules read raw series (plus earlier records of the same group are not needed)."""
    exported = all_exported_metrics()
    for rule in _rules(recording_rules()):
        names = metric_names(rule["expr"]) - _recorded_names()
        assert names <= exported, rule["record"]


def test_ttft_sli_reads_each_models_threshold_bucket(config: StageConfig) -> None:
    """The bad-event ratio counts requests above the model's own bucket bound (no interpolation)."""
    for rule in _rules(slo_recording_rules(list(config.models))):
        if rule["record"].startswith("model:slo_ttft_bad:"):
            for model in config.models:
                bound = f"{model.slo.ttft_p95_seconds:g}"
                assert f'model_id="{model.id}", le=~"{bound}(\\\\.0)?"' in rule["expr"], rule["expr"]


def test_queue_alert_threshold_is_factor_times_autoscaling_target(config: StageConfig) -> None:
    alerts = [rule for rule in _rules(_alerting(config)) if rule["alert"] == "HighQueueDepth"]
    assert len(alerts) == sum(len(model.versions) for model in config.models)
    for alert in alerts:
        model = next(model for model in config.models if model.id == alert["labels"]["model_id"])
        expected = model.autoscaling.target_queue_depth * config.observability.alert_queue_depth_factor
        assert f"> {expected:g}\n" in alert["expr"]


def test_thresholds_come_from_config(config: StageConfig) -> None:
    by_name = {rule["alert"]: rule["expr"] for rule in _rules(_alerting(config))}
    observability = config.observability
    assert by_name["KVCacheNearFull"].endswith(f"> {observability.alert_kv_cache_usage_ratio:g}")
    assert by_name["SpotInterruptionsHigh"].endswith(f"> {observability.alert_spot_interruptions_per_hour}")
    assert f'key="{SPOT_INTERRUPTION_TAINT_KEY}"' in by_name["SpotInterruptionsHigh"]


def test_gpu_node_alerts_select_gpu_nodes_and_gpu_requests(config: StageConfig) -> None:
    by_name = {rule["alert"]: rule["expr"] for rule in _rules(_alerting(config))}
    assert 'label_llm_inference_gpu_model!=""' in by_name["GpuNodeNotReady"]
    assert 'resource="nvidia_com_gpu"' in by_name["GpuPodsPending"]
    assert "kube_pod_status_unschedulable" in by_name["GpuPodsPending"]  # not image pulls


def test_model_rules_keep_the_contract_labels() -> None:
    for rule in _rules(recording_rules()):
        if rule["record"].startswith("model:"):
            assert "model_id" in rule["expr"], rule["record"]
            assert "model_version" in rule["expr"], rule["record"]
