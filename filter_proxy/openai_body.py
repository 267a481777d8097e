"""Where the text is in OpenAI request and response bodies, read and rewritten in place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Setter = Callable[[str], None]


def _setter(container: Any, key: Any) -> Setter:
    def put(value: str) -> None:
        container[key] = value

    return put


def _content(container: dict[str, Any] | list[Any], key: Any, out: list[tuple[str, Setter]]) -> None:
    value = container[key]
    if isinstance(value, str):
        out.append((value, _setter(container, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                out.append((item, _setter(value, index)))
            elif isinstance(item, dict) and isinstance(item.get("text"), str):
                out.append((item["text"], _setter(item, "text")))


def request_texts(body: dict[str, Any]) -> list[tuple[str, Setter]]:
    """Every prompt text of a chat, completion or embedding request, with a way to replace it."""
    out: list[tuple[str, Setter]] = []
    for message in body.get("messages") or []:
        if isinstance(message, dict) and "content" in message:
            _content(message, "content", out)
    for key in ("prompt", "input"):
        if key in body:
            _content(body, key, out)
    return [(text, put) for text, put in out if text]


def response_texts(body: dict[str, Any]) -> list[tuple[str, Setter]]:
    """Completion texts of a non-streamed chat or completion response."""
    out: list[tuple[str, Setter]] = []
    for choice in body.get("choices") or []:
        message = choice.get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            out.append((message["content"], _setter(message, "content")))
        elif isinstance(choice.get("text"), str):
            out.append((choice["text"], _setter(choice, "text")))
    return [(text, put) for text, put in out if text]


def chunk_text(chunk: dict[str, Any]) -> str:
    """The text a streamed chunk adds (chat ``delta.content`` or completion ``text``)."""
    parts = []
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta")
        if isinstance(delta, dict) and isinstance(delta.get("content"), str):
            parts.append(delta["content"])
        elif isinstance(choice.get("text"), str):
            parts.append(choice["text"])
    return "".join(parts)


def error_body(message: str, *, code: str, error_type: str = "invalid_request_error") -> dict[str, Any]:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}
