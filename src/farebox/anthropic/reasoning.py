"""Thinking blocks <-> OpenRouter-style `reasoning_details`, and the stop reason vocabulary."""

from __future__ import annotations

from typing import Any

FORMAT = "anthropic-claude-v1"
"""`reasoning_details[].format` for blocks that came from (or go to) Anthropic's format."""

_TO_OPENAI_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_TO_ANTHROPIC_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def openai_finish(stop_reason: object) -> str:
    """Anthropic's `stop_reason` as an OpenAI `finish_reason`."""
    return _TO_OPENAI_FINISH.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def anthropic_stop(
    finish_reason: object, matched: object, stop_sequences: tuple[str, ...]
) -> tuple[str, str | None]:
    """An OpenAI `finish_reason` (and the stop string matched, if the upstream says) as
    Anthropic's (`stop_reason`, `stop_sequence`)."""
    if finish_reason == "stop" and isinstance(matched, str) and matched in stop_sequences:
        return "stop_sequence", matched
    if isinstance(finish_reason, str):
        return _TO_ANTHROPIC_STOP.get(finish_reason, "end_turn"), None
    return "end_turn", None


def thinking_detail(text: str, signature: str | None, index: int) -> dict[str, Any]:
    detail: dict[str, Any] = {"type": "reasoning.text", "text": text, "format": FORMAT}
    if signature:
        detail["signature"] = signature
    detail["index"] = index
    return detail


def redacted_detail(data: str, index: int) -> dict[str, Any]:
    return {"type": "reasoning.encrypted", "data": data, "format": FORMAT, "index": index}


def blocks_from_details(details: object, fallback_text: object) -> list[dict[str, Any]]:
    """Anthropic thinking blocks from a message's `reasoning_details` (or its plain reasoning
    text when there are no details)."""
    blocks: list[dict[str, Any]] = []
    if isinstance(details, list):
        for item in details:
            if not isinstance(item, dict):
                continue
            kind = item.get("type")
            if kind == "reasoning.encrypted" and isinstance(item.get("data"), str):
                blocks.append({"type": "redacted_thinking", "data": item["data"]})
            elif kind in ("reasoning.text", "reasoning.summary"):
                text = item.get("text") if kind == "reasoning.text" else item.get("summary")
                signature = item.get("signature")
                blocks.append(
                    {
                        "type": "thinking",
                        "thinking": text if isinstance(text, str) else "",
                        "signature": signature if isinstance(signature, str) else "",
                    }
                )
    if not blocks and isinstance(fallback_text, str) and fallback_text:
        blocks.append({"type": "thinking", "thinking": fallback_text, "signature": ""})
    return blocks


def reasoning_text(message: dict[str, Any]) -> str | None:
    """The plain reasoning text an OpenAI-format message or delta carries, if any."""
    for field in ("reasoning_content", "reasoning"):
        value = message.get(field)
        if isinstance(value, str) and value:
            return value
    return None
