"""One ApplyGuardrail call and what its answer means for the proxy (shapes: botocore's
bedrock-runtime 2023-09-30 service model)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Direction = Literal["INPUT", "OUTPUT"]
INTERVENED = "GUARDRAIL_INTERVENED"


class BedrockRuntime(Protocol):
    def apply_guardrail(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Verdict:
    """``blocked``: refuse; ``rules``: what fired (bounded names, safe as metric labels);
    ``texts``: the guardrail's masked text per block when it only anonymized."""

    blocked: bool
    rules: tuple[str, ...] = ()
    texts: tuple[str, ...] | None = None
    anonymized: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def intervened(self) -> bool:
        return self.blocked or self.anonymized


def _fired(assessment: dict[str, Any]) -> list[tuple[str, str]]:
    """(rule, action) of every policy entry that acted; custom words and regex matches are named
    by their policy only, so a rule label never carries matched user text."""
    fired: list[tuple[str, str]] = []
    for item in assessment.get("contentPolicy", {}).get("filters", []):
        fired.append((f"content:{item['type']}", item["action"]))
    for item in assessment.get("topicPolicy", {}).get("topics", []):
        fired.append((f"topic:{item['name']}", item["action"]))
    words = assessment.get("wordPolicy", {})
    fired += [("word:custom", item["action"]) for item in words.get("customWords", [])]
    fired += [(f"word:{item['type']}", item["action"]) for item in words.get("managedWordLists", [])]
    pii = assessment.get("sensitiveInformationPolicy", {})
    fired += [(f"pii:{item['type']}", item["action"]) for item in pii.get("piiEntities", [])]
    fired += [("pii:regex", item["action"]) for item in pii.get("regexes", [])]
    return [(rule, action) for rule, action in fired if action != "NONE"]


def verdict(response: dict[str, Any], *, blocks: int) -> Verdict:
    if response.get("action") != INTERVENED:
        return Verdict(blocked=False)
    fired = [pair for assessment in response.get("assessments", []) for pair in _fired(assessment)]
    rules = tuple(sorted({rule for rule, _ in fired})) or ("unspecified",)
    if any(action == "BLOCKED" for _, action in fired) or not fired:
        return Verdict(blocked=True, rules=rules)
    texts = tuple(output.get("text", "") for output in response.get("outputs", []))
    if len(texts) != blocks:
        # The masked text cannot be put back per message: refuse rather than pass PII through.
        return Verdict(blocked=True, rules=(*rules, "redaction-unmappable"))
    return Verdict(blocked=False, rules=rules, texts=texts, anonymized=True)


class Guardrail:
    """A guardrail version, checked through a (blocking) botocore client in a worker thread."""

    def __init__(
        self, *, client: BedrockRuntime, identifier: str, version: str, timeout_seconds: float
    ) -> None:
        self._client = client
        self._identifier = identifier
        self._version = version
        self._timeout = timeout_seconds

    async def check(self, texts: Sequence[str], *, source: Direction) -> Verdict:
        texts = [text for text in texts if text]
        if not texts:
            return Verdict(blocked=False)
        request = {
            "guardrailIdentifier": self._identifier,
            "guardrailVersion": self._version,
            "source": source,
            "content": [{"text": {"text": text}} for text in texts],
        }
        response = await asyncio.wait_for(
            asyncio.to_thread(lambda: self._client.apply_guardrail(**request)), timeout=self._timeout
        )
        return verdict(response, blocks=len(texts))
