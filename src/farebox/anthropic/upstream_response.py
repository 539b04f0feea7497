"""An Anthropic upstream's reply as OpenAI chat: the JSON message, and the event stream as chunks.

The chat pipeline meters and settles OpenAI chunks, so an Anthropic upstream is read through this:
thinking text arrives as `reasoning_content`, signatures and redacted blocks as
`reasoning_details`, tool input as `tool_calls[].function.arguments` pieces, web search
citations as `url_citation` annotations and each finished web search as a usage-only chunk
(`server_tool_use.web_search_requests` so far). Usage maps
Anthropic's three input counts onto `prompt_tokens` (their sum) with
`prompt_tokens_details.cached_tokens` (cache reads) and `cache_write_tokens` (cache writes), so the
catalog's cache rates price them; thinking is part of `output_tokens`, billed as output.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from farebox.anthropic.reasoning import openai_finish, redacted_detail, thinking_detail
from farebox.chat.sse import DONE_EVENT, SseSplitter, data_event, event_data


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def openai_usage(usage: dict[str, Any]) -> dict[str, Any]:
    read = _int(usage.get("cache_read_input_tokens"))
    written = _int(usage.get("cache_creation_input_tokens"))
    prompt = _int(usage.get("input_tokens")) + read + written
    output = _int(usage.get("output_tokens"))
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": written},
    }
    searches = _int(_dict(usage.get("server_tool_use")).get("web_search_requests"))
    if searches:  # what the web search addon bills (search/native.py)
        out["server_tool_use"] = {"web_search_requests": searches}
    return out


def url_citation(citation: object, start: int, end: int) -> dict[str, Any] | None:
    """An Anthropic web search citation as an OpenAI `url_citation` annotation (None for
    citations of other kinds: documents, search_result blocks)."""
    cite = _dict(citation)
    if cite.get("type") != "web_search_result_location" or not isinstance(cite.get("url"), str):
        return None
    found: dict[str, Any] = {"url": cite["url"], "title": str(cite.get("title") or cite["url"])}
    if isinstance(cite.get("cited_text"), str):
        found["content"] = cite["cited_text"]
    return {
        "type": "url_citation",
        "url_citation": {**found, "start_index": start, "end_index": end},
    }


def to_completion(message: dict[str, Any]) -> dict[str, Any]:
    texts: list[str] = []
    thoughts: list[str] = []
    details: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    length = 0
    for block in message.get("content") or ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
            end = length + len(block["text"])
            for citation in block.get("citations") or ():
                if (annotation := url_citation(citation, length, end)) is not None:
                    annotations.append(annotation)
            length = end
        elif kind == "thinking":
            thought = block.get("thinking")
            text = thought if isinstance(thought, str) else ""
            thoughts.append(text)
            details.append(thinking_detail(text, block.get("signature"), len(details)))
        elif kind == "redacted_thinking" and isinstance(block.get("data"), str):
            details.append(redacted_detail(block["data"], len(details)))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        reply["tool_calls"] = calls
    if annotations:
        reply["annotations"] = annotations
    if details:
        reply["reasoning_details"] = details
        if any(thoughts):
            reply["reasoning_content"] = "".join(thoughts)
    choice: dict[str, Any] = {
        "index": 0,
        "message": reply,
        "finish_reason": openai_finish(message.get("stop_reason")),
    }
    if isinstance(message.get("stop_sequence"), str):
        choice["stop_reason"] = message["stop_sequence"]  # which stop string matched (as vLLM)
    completion: dict[str, Any] = {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.get("model"),
        "choices": [choice],
    }
    if isinstance(message.get("usage"), dict):
        completion["usage"] = openai_usage(message["usage"])
    return completion


class ChunkTranslator:
    """Anthropic stream events in, OpenAI chunk events (bytes) out."""

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self.created = int(time.time())
        self.usage: dict[str, Any] = {}
        self.tools = 0  # tool_use blocks seen (their OpenAI index)
        self.kinds: dict[int, str] = {}  # block index -> type
        self.done = False
        self.searches = 0  # web searches whose results have arrived

    def _chunk(
        self, delta: dict[str, Any] | None, finish: str | None = None, **extra: Any
    ) -> bytes:
        choice: dict[str, Any] = {"index": 0, "delta": delta or {}, "finish_reason": finish}
        choice.update(extra)
        return data_event(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [choice],
            }
        )

    def _start(self, index: int, block: dict[str, Any]) -> list[bytes]:
        kind = block.get("type")
        self.kinds[index] = kind if isinstance(kind, str) else ""
        if kind == "web_search_tool_result" and isinstance(block.get("content"), list):
            # A search ran: said at once in a usage-only chunk, so a stream cut before the
            # final usage is still billed the searches seen (the relay keeps the last usage).
            self.searches += 1
            searched = {"server_tool_use": {"web_search_requests": self.searches}}
            return [data_event({"id": self.id, "choices": [], "usage": searched})]
        if kind == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if kind == "thinking" and block.get("thinking"):
            return [self._chunk({"reasoning_content": block["thinking"]})]
        if kind == "redacted_thinking" and isinstance(block.get("data"), str):
            return [self._chunk({"reasoning_details": [redacted_detail(block["data"], index)]})]
        if kind == "tool_use":
            call = {
                "index": self.tools,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            self.tools += 1
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _delta(self, index: int, delta: dict[str, Any]) -> list[bytes]:
        kind = delta.get("type")
        if kind == "text_delta" and isinstance(delta.get("text"), str):
            return [self._chunk({"content": delta["text"]})]
        if kind == "thinking_delta" and isinstance(delta.get("thinking"), str):
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        if kind == "signature_delta" and isinstance(delta.get("signature"), str):
            detail = thinking_detail("", delta["signature"], index)
            return [self._chunk({"reasoning_details": [detail]})]
        if kind == "citations_delta":
            annotation = url_citation(delta.get("citation"), 0, 0)
            if annotation is not None:
                return [self._chunk({"annotations": [annotation]})]
        if kind == "input_json_delta" and self.kinds.get(index) == "tool_use":
            piece = delta.get("partial_json")
            if isinstance(piece, str) and piece:
                call = {"index": self.tools - 1, "function": {"arguments": piece}}
                return [self._chunk({"tool_calls": [call]})]
        return []

    def feed(self, event: dict[str, Any]) -> list[bytes]:
        kind = event.get("type")
        if kind == "message_start":
            message = _dict(event.get("message"))
            self.id = str(message.get("id") or "")
            self.model = str(message.get("model") or "")
            if isinstance(message.get("usage"), dict):
                self.usage.update(message["usage"])
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start" and isinstance(event.get("content_block"), dict):
            return self._start(int(event.get("index", 0)), event["content_block"])
        if kind == "content_block_delta" and isinstance(event.get("delta"), dict):
            return self._delta(int(event.get("index", 0)), event["delta"])
        if kind == "message_delta":
            if isinstance(event.get("usage"), dict):
                self.usage.update({k: v for k, v in event["usage"].items() if v is not None})
            delta = _dict(event.get("delta"))
            stop_reason = delta.get("stop_reason")
            if stop_reason is None:
                return []
            extra = {}
            if isinstance(delta.get("stop_sequence"), str):
                extra["stop_reason"] = delta["stop_sequence"]
            return [self._chunk(None, openai_finish(stop_reason), **extra)]
        if kind == "message_stop":
            self.done = True
            usage = data_event(
                {
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": openai_usage(self.usage),
                }
            )
            return [usage, DONE_EVENT]
        if kind == "error":
            error = _dict(event.get("error"))
            reason = error.get("message") or "The upstream reported an error"
            return [
                data_event(
                    {
                        "error": {
                            "message": f"Anthropic: {reason}",
                            "type": error.get("type") or "upstream_error",
                            "code": "upstream_stream_error",
                        }
                    }
                )
            ]
        return []  # ping, content_block_stop, unknown events


async def translate_events(raw: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """OpenAI SSE bytes for the Anthropic SSE bytes of `raw`."""
    splitter = SseSplitter()
    translator = ChunkTranslator()
    async for data in raw:
        out: list[bytes] = []
        for event in splitter.feed(data):
            payload = event_data(event)
            if payload is None:
                continue
            try:
                obj = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                out += translator.feed(obj)
        if out:
            yield b"".join(out)
        if translator.done:
            return
