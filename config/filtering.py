"""Input/output filtering of one model: an Amazon Bedrock guardrail checked by a sidecar proxy.

The guardrail (stacks/serving_stack.py) is built from these settings; the proxy
(filter_proxy/) calls ApplyGuardrail on every prompt and completion. Enum values are the
CloudFormation ``AWS::Bedrock::Guardrail`` ones (aws-cdk-lib 2.275 CfnGuardrail), pinned in
tests/unit/config/test_filtering_config.py.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from config.base import Strict, duplicates

FilterStrength = Literal["NONE", "LOW", "MEDIUM", "HIGH"]
PiiAction = Literal["BLOCK", "ANONYMIZE"]
# GuardrailPiiEntityType of the bedrock-runtime service model (botocore) for the entities a
# platform team usually means by PII; the full list is longer.
PiiEntity = Literal[
    "ADDRESS",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "CREDIT_DEBIT_CARD_NUMBER",
    "CREDIT_DEBIT_CARD_CVV",
    "EMAIL",
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
    "IP_ADDRESS",
    "NAME",
    "PASSWORD",
    "PHONE",
    "US_BANK_ACCOUNT_NUMBER",
    "US_PASSPORT_NUMBER",
    "US_SOCIAL_SECURITY_NUMBER",
]
DEFAULT_PII: tuple[PiiEntity, ...] = (
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "CREDIT_DEBIT_CARD_NUMBER",
    "EMAIL",
    "PHONE",
    "US_SOCIAL_SECURITY_NUMBER",
)


TopicExample = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class DeniedTopic(Strict):
    """Limits: GuardrailTopicName/Definition/Examples of the bedrock service model (botocore)."""

    name: str = Field(pattern=r"^[0-9A-Za-z_ \-!?.]{1,100}$", description="Bedrock topic name.")
    definition: str = Field(min_length=1, max_length=200)
    examples: list[TopicExample] = Field(default_factory=list, max_length=5)


class FilteringConfig(Strict):
    """``models[].filtering``: off unless enabled."""

    enabled: bool = False
    prompt_attack_strength: FilterStrength = Field(
        default="HIGH", description="Jailbreak / prompt-injection filter on input (outputs: NONE)."
    )
    harmful_content_strength: FilterStrength = Field(
        default="MEDIUM", description="HATE, INSULTS, SEXUAL, VIOLENCE, MISCONDUCT on input and output."
    )
    pii_action: PiiAction = Field(default="ANONYMIZE", description="Redact or block detected PII.")
    pii_entities: list[PiiEntity] = Field(default_factory=lambda: list(DEFAULT_PII))
    denied_topics: list[DeniedTopic] = Field(default_factory=list, max_length=30)
    blocked_words: list[str] = Field(default_factory=list, max_length=10000)
    block_profanity: bool = True
    check_output: bool = True
    stream_window_chars: int = Field(
        default=400, ge=50, le=5000, description="Streamed text checked per ApplyGuardrail call."
    )
    on_error: Literal["block", "allow"] = Field(
        default="block", description="When the guardrail cannot be reached: fail closed (503) or open."
    )
    timeout_seconds: float = Field(default=2.0, gt=0, le=30)

    @model_validator(mode="after")
    def _something_to_check(self) -> FilteringConfig:
        repeated = duplicates([topic.name for topic in self.denied_topics])
        if repeated:
            raise ValueError(f"filtering.denied_topics: duplicate names {repeated}")
        if self.enabled and not (
            self.prompt_attack_strength != "NONE"
            or self.harmful_content_strength != "NONE"
            or self.pii_entities
            or self.denied_topics
            or self.blocked_words
            or self.block_profanity
        ):
            raise ValueError(
                "filtering.enabled is true but every policy is off; allowed: at least one of "
                "prompt_attack_strength/harmful_content_strength other than NONE, pii_entities, "
                "denied_topics, blocked_words, block_profanity"
            )
        return self
