"""The environment contract in lambdas/README.md: defaults, formats and errors."""

from __future__ import annotations

import base64

import pytest
from k8s_fake import make_tls_material

from lambdas.common.settings import ClusterSettings, SettingsError, env_list
from lambdas.offhours_scaler.records import Scaling
from lambdas.offhours_scaler.settings import ScalerSettings
from lambdas.spot_interruption.settings import SpotSettings

CLUSTER = {
    "CLUSTER_NAME": "c",
    "CLUSTER_ENDPOINT": "https://ABC.gr7.us-east-1.eks.amazonaws.com",
    "CLUSTER_CA_DATA": make_tls_material().ca_data,
}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_missing_cluster_variables_are_named() -> None:
    with pytest.raises(SettingsError, match="CLUSTER_ENDPOINT, CLUSTER_CA_DATA"):
        ClusterSettings.from_env({"CLUSTER_NAME": "c"})


def test_endpoint_must_be_https() -> None:
    with pytest.raises(SettingsError, match="https"):
        ClusterSettings.from_env({**CLUSTER, "CLUSTER_ENDPOINT": "http://plain"})


@pytest.mark.parametrize(
    ("value", "why"),
    [
        pytest.param("not base64!", "not base64-encoded PEM", id="not-base64"),
        pytest.param(b64("hello, cluster"), "not of a PEM certificate", id="base64-of-text"),
        pytest.param(
            b64("-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n"),
            "not of a PEM certificate",
            id="base64-of-a-broken-certificate",
        ),
        pytest.param(b64("   "), "not of a PEM certificate", id="base64-of-blanks"),
    ],
)
def test_ca_data_that_is_not_a_certificate_is_a_settings_error(value: str, why: str) -> None:
    with pytest.raises(SettingsError, match=why) as raised:
        ClusterSettings.from_env({**CLUSTER, "CLUSTER_CA_DATA": value})
    assert "certificateAuthority.data" in str(raised.value)
    assert repr(value[:24]) in str(raised.value)


def test_spot_defaults() -> None:
    settings = SpotSettings.from_env(CLUSTER)
    assert settings.rebalance_action == "cordon"
    assert settings.safety_seconds == 10
    assert settings.concurrency == 32


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REBALANCE_ACTION", "terminate"),
        ("DRAIN_SAFETY_SECONDS", "soon"),
        ("EVICTION_CONCURRENCY", "0"),
    ],
)
def test_spot_bad_values_are_rejected(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        SpotSettings.from_env({**CLUSTER, name: value})


def test_scaler_defaults_and_lists() -> None:
    settings = ScalerSettings.from_env(
        {**CLUSTER, "DEPLOYMENTS": "a, b,,a", "NODE_GROUPS": '["gpu-1", "gpu-2"]'}
    )
    assert settings.namespace == "models"
    assert settings.deployments == ("a", "b")
    assert settings.node_groups == ("gpu-1", "gpu-2")
    assert settings.floor_replicas == 0
    assert settings.floor_nodes == 0
    assert settings.off_hours_per_night == 12
    assert settings.retry_seconds == 120
    assert settings.ready_check is None


def test_ready_check_needs_its_schedule_group_role_and_queue() -> None:
    env = {**CLUSTER, "DEPLOYMENTS": "a", "READY_CHECK_MINUTES": "30"}
    with pytest.raises(SettingsError, match="READY_CHECK_SCHEDULE_GROUP, READY_CHECK_ROLE_ARN, DEAD"):
        ScalerSettings.from_env(env)
    ready = {
        "READY_CHECK_SCHEDULE_GROUP": "group",
        "READY_CHECK_ROLE_ARN": "arn:aws:iam::1:role/r",
        "DEAD_LETTER_QUEUE_ARN": "arn:aws:sqs:us-east-1:1:q",
    }
    settings = ScalerSettings.from_env({**env, **ready})
    assert settings.ready_check is not None
    assert (settings.ready_check.minutes, settings.ready_check.schedule_group) == (30, "group")


def test_scaler_needs_something_to_scale() -> None:
    with pytest.raises(SettingsError, match="nothing to scale"):
        ScalerSettings.from_env(CLUSTER)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FLOOR_REPLICAS", "-1"),
        ("FLOOR_NODES", "two"),
        ("OFF_HOURS_PER_NIGHT", "25"),
        ("READY_CHECK_MINUTES", "soon"),
        ("NODE_GROUPS", '["ok", 3]'),
        ("NODE_GROUPS", "[not json"),
    ],
)
def test_scaler_bad_values_are_rejected(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        ScalerSettings.from_env({**CLUSTER, "DEPLOYMENTS": "a", name: value})


def test_env_list_empty() -> None:
    assert env_list({"X": "  "}, "X") == ()


def test_scaling_record_round_trips_and_rejects_garbage() -> None:
    scaling = Scaling(1, 2, 6)
    assert Scaling.decode(scaling.encode()) == scaling
    with pytest.raises(ValueError, match="min=N"):
        Scaling.decode("1/2/6")
