"""models[].filtering: defaults, errors that name file, field and what is allowed, and enum values
that exist in the pinned Bedrock service model and CloudFormation types."""

from __future__ import annotations

import typing

import botocore.session
import pytest

from config import ConfigError, parse_stage
from config.filtering import FilterStrength, PiiAction, PiiEntity
from tests.unit.charts.helpers import stage_data


def _runtime_enum(shape: str) -> set[str]:
    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    enum: list[str] = model.shape_for(shape).enum  # type: ignore[attr-defined]  # a StringShape
    return set(enum)


def _control_enum(shape: str) -> set[str]:
    model = botocore.session.get_session().get_service_model("bedrock")
    enum: list[str] = model.shape_for(shape).enum  # type: ignore[attr-defined]  # a StringShape
    return set(enum)


def test_filtering_is_off_by_default_and_on_in_prod() -> None:
    dev = parse_stage(stage_data(), name="dev", source="config/dev.yaml")
    prod = parse_stage(stage_data("prod"), name="prod", source="config/prod.yaml")
    assert [model.filtering.enabled for model in dev.models] == [False] * len(dev.models)
    assert [model.filtering.enabled for model in prod.models] == [True] * len(prod.models)


def test_enum_values_exist_in_the_bedrock_service_models() -> None:
    # bedrock-runtime: what ApplyGuardrail reports; bedrock (control plane): what a guardrail takes.
    assert set(typing.get_args(PiiEntity)) <= _runtime_enum("GuardrailPiiEntityType")
    assert set(typing.get_args(PiiEntity)) <= _control_enum("GuardrailPiiEntityType")
    assert set(typing.get_args(FilterStrength)) == _control_enum("GuardrailFilterStrength")
    assert set(typing.get_args(PiiAction)) <= _control_enum("GuardrailSensitiveInformationAction")


@pytest.mark.parametrize(
    ("filtering", "message"),
    [
        (
            {
                "enabled": True,
                "prompt_attack_strength": "NONE",
                "harmful_content_strength": "NONE",
                "pii_entities": [],
                "block_profanity": False,
            },
            "every policy is off",
        ),
        ({"pii_action": "REDACT"}, "'BLOCK' or 'ANONYMIZE'"),
        ({"pii_entities": ["SSN"]}, "US_SOCIAL_SECURITY_NUMBER"),
        ({"stream_window_chars": 10}, "greater than or equal to 50"),
        (
            {"denied_topics": [{"name": "a", "definition": "x"}, {"name": "a", "definition": "y"}]},
            "duplicate names ['a']",
        ),
        ({"on_error": "ignore"}, "'block' or 'allow'"),
    ],
)
def test_bad_filtering_is_an_error_naming_file_field_and_allowed_values(
    filtering: dict[str, object], message: str
) -> None:
    data = stage_data()
    data["models"][0]["filtering"] = filtering
    with pytest.raises(ConfigError) as error:
        parse_stage(data, name="dev", source="config/dev.yaml")
    text = str(error.value)
    assert "config/dev.yaml" in text
    assert "models[0].filtering" in text
    assert message in text


def test_topic_limits_and_guardrail_names_follow_the_service_model() -> None:
    from config.filtering import DeniedTopic
    from constructs_lib.model_guardrail import MAX_NAME, guardrail_name

    model = botocore.session.get_session().get_service_model("bedrock")
    assert model.shape_for("GuardrailTopicName").metadata["max"] == 100
    assert model.shape_for("GuardrailTopicDefinition").metadata["max"] == 200
    assert model.shape_for("GuardrailTopicExamples").metadata["max"] == 5
    assert model.shape_for("GuardrailTopicExample").metadata["max"] == 100
    assert model.shape_for("GuardrailName").metadata["max"] == MAX_NAME
    with pytest.raises(ValueError, match="at most 100 characters"):
        DeniedTopic(name="t", definition="d", examples=["x" * 101])
    long_name = guardrail_name("staging", "m" * 63)
    assert len(long_name) == MAX_NAME
    assert long_name != guardrail_name("staging", "m" * 62)
