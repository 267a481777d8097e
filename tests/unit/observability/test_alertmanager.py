"""Alertmanager routes critical and warning alerts to the SNS topic with SigV4 in the stage's region."""

from __future__ import annotations

import yaml

from observability.alertmanager import alertmanager_config, alertmanager_definition

TOPIC = "arn:aws:sns:us-west-2:333333333333:alerts"


def test_definition_wraps_the_config_as_amp_expects() -> None:
    definition = yaml.safe_load(alertmanager_definition(topic_arn=TOPIC, region="us-west-2", stage="prod"))
    assert set(definition) == {"alertmanager_config"}
    assert yaml.safe_load(definition["alertmanager_config"]) == alertmanager_config(
        topic_arn=TOPIC, region="us-west-2", stage="prod"
    )


def test_routes_by_severity_to_receivers_that_publish_to_the_topic() -> None:
    config = alertmanager_config(topic_arn=TOPIC, region="us-west-2", stage="prod")
    routes = {route["receiver"]: route for route in config["route"]["routes"]}
    assert routes["critical"]["matchers"] == ['severity="critical"']
    assert routes["warning"]["matchers"] == ['severity="warning"']
    assert routes["critical"]["repeat_interval"] == "1h"
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    assert set(receivers) == {"critical", "warning"}
    assert config["route"]["receiver"] in receivers
    for severity, receiver in receivers.items():
        (sns,) = receiver["sns_configs"]
        assert sns["topic_arn"] == TOPIC
        assert sns["sigv4"] == {"region": "us-west-2"}
        assert sns["attributes"] == {"severity": severity, "stage": "prod"}


def test_cdk_tokens_survive_the_literal_block() -> None:
    token = "${Token[TOKEN.123]}"
    assert f"topic_arn: {token}" in alertmanager_definition(topic_arn=token, region="r", stage="dev")
