"""An OpenAI chat stream (as the metered relay sends it) as Anthropic's Messages events.

`message_start`, `ping`, then one `content_block_start` / `content_block_delta`* /
`content_block_stop` per block (text_delta, thinking_delta, signature_delta, input_json_delta;
redacted_thinking blocks arrive whole), then `message_delta` with `stop_reason` and the usage
(cumulative, with farebox's `cost`), then `message_stop`. A stream the upstream broke off ends
with the usage of what was delivered and an `error` event instead of `message_stop`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from farebox.anthropic.front_response import anthropic_usage, web_citations
from farebox.anthropic.reasoning import anthropic_stop, reasoning_text
from farebox.chat.sse import DONE, SseSplitter, event_data


def sse(event: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def error_event(error_type: str, message: str) -> bytes:
    return sse("error", {"type": "error", "error": {"type": error_type, "message": message}})


class StreamTranslator:
    """Feeds OpenAI chunk objects, gives back Anthropic event bytes."""

    def __init__(
        self,
        *,
        message_id: str,
        model: str,
        input_tokens: int,
        stop_sequences: tuple[str, ...],
        omit_thinking: bool,
    ) -> None:
        self.message_id = message_id
        self.model = model
        self.input_tokens = input_tokens
        self.stop_sequences = stop_sequences
        self.omit_thinking = omit_thinking
        self.index = -1
        self.open: str | None = None  # kind of the open block: text, thinking, tool_use
        self.sealed = False  # the open thinking block got its signature
        self.tool_index: int | None = None
        self.finish: object = None
        self.matched: object = None
        self.usage: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None

    def start(self) -> bytes:
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": self.input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 0,
            },
        }
        return sse("message_start", {"type": "message_start", "message": message}) + sse(
            "ping", {"type": "ping"}
        )

    def _close(self) -> list[bytes]:
        if self.open is None:
            return []
        self.open = None
        self.tool_index = None
        return [sse("content_block_stop", {"type": "content_block_stop", "index": self.index})]

    def _begin(self, block: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self.index += 1
        self.open = block["type"]
        self.sealed = False
        out.append(
            sse(
                "content_block_start",
                {"type": "content_block_start", "index": self.index, "content_block": block},
            )
        )
        return out

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": self.index, "delta": delta},
        )

    def _thinking(self, text: str | None, signature: str | None) -> list[bytes]:
        out: list[bytes] = []
        if self.open != "thinking" or self.sealed:
            out += self._begin({"type": "thinking", "thinking": "", "signature": ""})
        if text and not self.omit_thinking:
            out.append(self._delta({"type": "thinking_delta", "thinking": text}))
        if signature:
            out.append(self._delta({"type": "signature_delta", "signature": signature}))
            self.sealed = True
        return out

    def _reasoning(self, delta: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        text = reasoning_text(delta)
        if text:
            out += self._thinking(text, None)
        details = delta.get("reasoning_details")
        for item in details if isinstance(details, list) else ():
            if not isinstance(item, dict):
                continue
            kind = item.get("type")
            if kind == "reasoning.encrypted" and isinstance(item.get("data"), str):
                out += self._begin({"type": "redacted_thinking", "data": item["data"]})
                out += self._close()
            elif kind in ("reasoning.text", "reasoning.summary"):
                piece = item.get("text") if kind == "reasoning.text" else item.get("summary")
                signature = item.get("signature")
                out += self._thinking(
                    None if text else (piece if isinstance(piece, str) else None),
                    signature if isinstance(signature, str) else None,
                )
        return out

    def _tool_calls(self, calls: list[Any]) -> list[bytes]:
        out: list[bytes] = []
        for call in calls:
            if not isinstance(call, dict):
                continue
            index = call.get("index", 0)
            function = call.get("function")
            if not isinstance(function, dict):
                function = {}
            if self.open != "tool_use" or call.get("id") or index != self.tool_index:
                out += self._begin(
                    {
                        "type": "tool_use",
                        "id": call.get("id") or f"toolu_{self.message_id}_{index}",
                        "name": function.get("name") or "",
                        "input": {},
                    }
                )
                self.tool_index = index
            arguments = function.get("arguments")
            if isinstance(arguments, str) and arguments:
                out.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
        return out

    def _citations(self, annotations: object) -> list[bytes]:
        """Web search citations (`url_citation` annotations) as `citations_delta`s of a text
        block (the open one, else a new empty one, as Anthropic cites within text blocks)."""
        out: list[bytes] = []
        for citation in web_citations(annotations):
            if self.open != "text":
                out += self._begin({"type": "text", "text": ""})
            out.append(self._delta({"type": "citations_delta", "citation": citation}))
        return out

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        if "error" in chunk:
            error = chunk["error"]
            self.error = error if isinstance(error, dict) else {"message": str(error)}
            return []
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        out: list[bytes] = []
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                out += self._reasoning(delta)
                text = delta.get("content")
                if isinstance(text, str) and text:
                    if self.open != "text":
                        out += self._begin({"type": "text", "text": ""})
                    out.append(self._delta({"type": "text_delta", "text": text}))
                calls = delta.get("tool_calls")
                if isinstance(calls, list):
                    out += self._tool_calls(calls)
                out += self._citations(delta.get("annotations"))
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
                self.matched = choice.get("stop_reason")
        return out

    def finish_events(self) -> list[bytes]:
        out = self._close()
        usage = anthropic_usage(self.usage)
        if self.finish is not None or self.error is None:
            stop_reason, stop_sequence = anthropic_stop(
                self.finish, self.matched, self.stop_sequences
            )
            delta: dict[str, Any] = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
        else:
            delta = {"stop_reason": None, "stop_sequence": None}
        out.append(sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
        if self.error is not None:
            message = self.error.get("message")
            out.append(
                error_event("api_error", message if isinstance(message, str) else "Upstream error")
            )
        else:
            out.append(sse("message_stop", {"type": "message_stop"}))
        return out


async def translate_stream(
    upstream: AsyncIterator[bytes], translator: StreamTranslator
) -> AsyncIterator[bytes]:
    """Anthropic events for the OpenAI SSE bytes of `upstream` (the metered relay)."""
    splitter = SseSplitter()
    yield translator.start()
    try:
        async for data in upstream:
            out: list[bytes] = []
            for event in splitter.feed(data):
                payload = event_data(event)
                if payload is None or payload == DONE:
                    continue
                try:
                    chunk = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(chunk, dict):
                    out += translator.feed(chunk)
            if out:
                yield b"".join(out)
        yield b"".join(translator.finish_events())
    finally:
        close = getattr(upstream, "aclose", None)
        if close is not None:
            await close()
