"""Serving stack: a Bedrock guardrail per filtered model, a pinned version, ApplyGuardrail on it
only for that model's pods, and the ConfigMap that tells the sidecar which guardrail to call."""

from __future__ import annotations

from typing import Any

from tests.synth import SynthResult
from tests.templates import manifests, resources


def _template(synth: SynthResult, stage: str) -> dict[str, Any]:
    return synth.templates[stage]["Serving"]


def _guardrails(synth: SynthResult, stage: str) -> dict[str, dict[str, Any]]:
    return resources(_template(synth, stage), "AWS::Bedrock::Guardrail")


def _logical_id(synth: SynthResult, model_id: str) -> str:
    model = model_id.replace("-", "")
    (found,) = [name for name in _guardrails(synth, "prod") if name.startswith(f"Guardrail{model}")]
    return found


def test_only_stages_that_filter_have_guardrails(synth: SynthResult) -> None:
    assert _guardrails(synth, "dev") == {}
    assert len(_guardrails(synth, "prod")) == len(synth.configs["prod"].models)


def test_the_guardrail_has_prompt_attack_pii_topics_and_word_policies(synth: SynthResult) -> None:
    properties = _guardrails(synth, "prod")[_logical_id(synth, "llama-3-1-8b")]["Properties"]
    filters = {item["Type"]: item for item in properties["ContentPolicyConfig"]["FiltersConfig"]}
    assert filters["PROMPT_ATTACK"]["InputStrength"] == "HIGH"
    assert filters["PROMPT_ATTACK"]["OutputStrength"] == "NONE"
    assert {"HATE", "INSULTS", "SEXUAL", "VIOLENCE", "MISCONDUCT"} <= set(filters)
    pii = properties["SensitiveInformationPolicyConfig"]["PiiEntitiesConfig"]
    assert {item["Type"]: item["Action"] for item in pii}["US_SOCIAL_SECURITY_NUMBER"] == "ANONYMIZE"
    (topic,) = properties["TopicPolicyConfig"]["TopicsConfig"]
    assert (topic["Name"], topic["Type"]) == ("weapons-of-mass-harm", "DENY")
    assert properties["WordPolicyConfig"]["ManagedWordListsConfig"] == [{"Type": "PROFANITY"}]
    assert properties["Name"] == "llm-inference-prod-llama-3-1-8b"


def test_the_proxy_pins_a_numbered_version_that_changes_with_the_settings(synth: SynthResult) -> None:
    guardrail = _logical_id(synth, "llama-3-1-8b")
    versions = resources(_template(synth, "prod"), "AWS::Bedrock::GuardrailVersion")
    (version_id, version) = next(
        (name, item)
        for name, item in versions.items()
        if item["Properties"]["GuardrailIdentifier"] == {"Fn::GetAtt": [guardrail, "GuardrailId"]}
    )
    assert version["Properties"]["Description"].startswith("settings ")
    (config_map,) = [
        m
        for m in manifests(_template(synth, "prod"))
        if m["kind"] == "ConfigMap" and m["metadata"]["name"] == "llama-3-1-8b-guardrail"
    ]
    assert config_map["metadata"]["namespace"] == "models"
    assert config_map["data"]["GUARDRAIL_ID"] == f"<GetAtt:{guardrail}.GuardrailId>"
    assert config_map["data"]["GUARDRAIL_VERSION"] == f"<GetAtt:{version_id}.Version>"


def test_each_model_pod_role_may_apply_its_own_guardrail_only(synth: SynthResult) -> None:
    template = _template(synth, "prod")
    found: dict[str, list[Any]] = {}
    # Reader roles carry add_to_policy statements in AWS::IAM::Policy resources.
    for name, policy in resources(template, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not any(action in ("bedrock:*", "*") for action in actions), name
            if "bedrock:ApplyGuardrail" in actions:
                assert actions == ["bedrock:ApplyGuardrail"]
                found[name] = (
                    statement["Resource"]
                    if isinstance(statement["Resource"], list)
                    else [statement["Resource"]]
                )
    for model in synth.configs["prod"].models:
        guardrail = _logical_id(synth, model.id)
        prefix = f"Reader{model.id.replace('-', '')}"
        grants = [resource for name, resource in found.items() if name.startswith(prefix)]
        assert grants == [[{"Fn::GetAtt": [guardrail, "GuardrailArn"]}]], (model.id, found)
