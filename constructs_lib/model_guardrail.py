"""An Amazon Bedrock guardrail for one model, and a numbered version of it the proxy pins."""

from __future__ import annotations

import hashlib

from aws_cdk import Stack
from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_iam as iam
from constructs import Construct

from config.filtering import FilteringConfig

HARMFUL_CONTENT = ("HATE", "INSULTS", "SEXUAL", "VIOLENCE", "MISCONDUCT")
MAX_NAME = 50  # GuardrailName: 1-50 of [0-9a-zA-Z-_] (bedrock service model)


def guardrail_name(stage: str, model_id: str) -> str:
    name = f"llm-inference-{stage}-{model_id}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}-{digest}"


BLOCKED_MESSAGE = "This request was blocked by the content filter."


def _content_filters(filtering: FilteringConfig) -> list[bedrock.CfnGuardrail.ContentFilterConfigProperty]:
    filters = [
        bedrock.CfnGuardrail.ContentFilterConfigProperty(
            type=kind,
            input_strength=filtering.harmful_content_strength,
            output_strength=filtering.harmful_content_strength,
        )
        for kind in HARMFUL_CONTENT
        if filtering.harmful_content_strength != "NONE"
    ]
    if filtering.prompt_attack_strength != "NONE":
        # Prompt attacks are an input filter only: Bedrock requires output strength NONE.
        filters.append(
            bedrock.CfnGuardrail.ContentFilterConfigProperty(
                type="PROMPT_ATTACK", input_strength=filtering.prompt_attack_strength, output_strength="NONE"
            )
        )
    return filters


class ModelGuardrail(Construct):
    """Exposes ``guardrail`` (``AWS::Bedrock::Guardrail``), ``version``
    (``AWS::Bedrock::GuardrailVersion``), ``guardrail_id`` and ``version_number``.

    Props:
        model_id: the model the guardrail filters (names it).
        stage: the stage name.
        filtering: the model's ``filtering`` settings.
    """

    def __init__(
        self, scope: Construct, id_: str, *, model_id: str, stage: str, filtering: FilteringConfig
    ) -> None:
        super().__init__(scope, id_)
        content = _content_filters(filtering)
        pii = [
            bedrock.CfnGuardrail.PiiEntityConfigProperty(type=entity, action=filtering.pii_action)
            for entity in filtering.pii_entities
        ]
        topics = [
            bedrock.CfnGuardrail.TopicConfigProperty(
                name=topic.name, definition=topic.definition, type="DENY", examples=topic.examples or None
            )
            for topic in filtering.denied_topics
        ]
        words = [bedrock.CfnGuardrail.WordConfigProperty(text=word) for word in filtering.blocked_words]
        managed = (
            [bedrock.CfnGuardrail.ManagedWordsConfigProperty(type="PROFANITY")]
            if filtering.block_profanity
            else []
        )
        self.guardrail = bedrock.CfnGuardrail(
            self,
            "Guardrail",
            name=guardrail_name(stage, model_id),
            description=f"Input/output filter of model {model_id} in stage {stage}",
            blocked_input_messaging=BLOCKED_MESSAGE,
            blocked_outputs_messaging=BLOCKED_MESSAGE,
            content_policy_config=(
                bedrock.CfnGuardrail.ContentPolicyConfigProperty(filters_config=content) if content else None
            ),
            sensitive_information_policy_config=(
                bedrock.CfnGuardrail.SensitiveInformationPolicyConfigProperty(pii_entities_config=pii)
                if pii
                else None
            ),
            topic_policy_config=(
                bedrock.CfnGuardrail.TopicPolicyConfigProperty(topics_config=topics) if topics else None
            ),
            word_policy_config=(
                bedrock.CfnGuardrail.WordPolicyConfigProperty(
                    words_config=words or None, managed_word_lists_config=managed or None
                )
                if words or managed
                else None
            ),
        )
        # A GuardrailVersion snapshots the guardrail when it is created and is replaced only when
        # its own properties change: the settings' hash in the description makes a new version
        # (and a rollout of the pods pinned to it) follow every change of the settings.
        settings_hash = hashlib.sha256(filtering.model_dump_json().encode()).hexdigest()[:16]
        self.version = bedrock.CfnGuardrailVersion(
            self,
            "Version",
            guardrail_identifier=self.guardrail.attr_guardrail_id,
            description=f"settings {settings_hash}",
        )
        self.guardrail_id = self.guardrail.attr_guardrail_id
        self.version_number = self.version.attr_version

    def apply_statement(self) -> iam.PolicyStatement:
        """bedrock:ApplyGuardrail on this guardrail only."""
        return iam.PolicyStatement(
            sid="ApplyModelGuardrail",
            actions=["bedrock:ApplyGuardrail"],
            resources=[self.guardrail.attr_guardrail_arn],
        )

    @property
    def stack(self) -> Stack:
        return Stack.of(self)
