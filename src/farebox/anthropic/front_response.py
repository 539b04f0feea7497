"""An OpenAI chat completion (with farebox's usage and cost) as an Anthropic Messages reply."""

from __future__ import annotations

from typing import Any

import orjson

from farebox.anthropic.reasoning import anthropic_stop, blocks_from_details, reasoning_text


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def anthropic_usage(usage: object) -> dict[str, Any]:
    """OpenAI usage -> Anthropic usage. Anthropic's `input_tokens` excludes cached tokens, which
    it reports apart; farebox's `cost` (USD) is kept as an extra field."""
    if not isinstance(usage, dict):
        return {"input_tokens": 0, "output_tokens": 0}
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    cached = _int(details.get("cached_tokens"))
    written = _int(details.get("cache_write_tokens"))
    prompt = _int(usage.get("prompt_tokens"))
    out: dict[str, Any] = {
        "input_tokens": max(prompt - cached - written, 0),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
        "output_tokens": _int(usage.get("completion_tokens")),
    }
    for extra in ("cost", "web_search"):  # farebox's: USD charged, the web plugin's search
        if extra in usage:
            out[extra] = usage[extra]
    search = usage.get("web_search")
    if isinstance(search, dict) and search.get("engine") == "native":
        out["server_tool_use"] = {"web_search_requests": _int(search.get("requests"))}
    return out


def web_citations(annotations: object) -> list[dict[str, Any]]:
    """`url_citation` annotations as Anthropic web search citations (a text block's)."""
    out = []
    for item in annotations if isinstance(annotations, list) else ():
        found = item.get("url_citation") if isinstance(item, dict) else None
        if isinstance(found, dict) and isinstance(found.get("url"), str):
            out.append(
                {
                    "type": "web_search_result_location",
                    "url": found["url"],
                    "title": str(found.get("title") or found["url"]),
                    "cited_text": str(found.get("content") or ""),
                    "encrypted_index": "",
                }
            )
    return out


def tool_input(arguments: object) -> dict[str, Any]:
    """A tool call's JSON arguments as the object Anthropic's `input` must be."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw_arguments": arguments}  # cut short (max_tokens): keep what came
    return value if isinstance(value, dict) else {"value": value}


def content_blocks(message: dict[str, Any], omit_thinking: bool) -> list[dict[str, Any]]:
    """Thinking, then text, then tool_use blocks of an OpenAI assistant message."""
    blocks = blocks_from_details(message.get("reasoning_details"), reasoning_text(message))
    if omit_thinking:
        for block in blocks:
            if block["type"] == "thinking":
                block["thinking"] = ""
    text = message.get("content")
    if isinstance(text, list):  # some upstreams answer in parts
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    if isinstance(text, str) and text:
        blocks.append({"type": "text", "text": text})
        citations = web_citations(message.get("annotations"))
        if citations:
            blocks[-1]["citations"] = citations
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id") or "",
                "name": function.get("name") or "",
                "input": tool_input(function.get("arguments")),
            }
        )
    return blocks


def to_message(
    completion: dict[str, Any],
    *,
    message_id: str,
    model: str,
    stop_sequences: tuple[str, ...],
    omit_thinking: bool,
) -> dict[str, Any]:
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message")
    if not isinstance(message, dict):
        message = {}
    stop_reason, stop_sequence = anthropic_stop(
        choice.get("finish_reason"), choice.get("stop_reason"), stop_sequences
    )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content_blocks(message, omit_thinking),
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": anthropic_usage(completion.get("usage")),
    }
