"""The simulated Anthropic model's reply, sent whole or as Anthropic's event stream (content
blocks with their deltas, paced by the tokens each carries; the stream faults cut it short)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from farebox.sim.faults import Faults
from farebox.sim.gate import Pace
from farebox.sim.sse import drop_connection, open_stream, send_events
from farebox.sim.state import SimState
from farebox.sim.tokens import Tokenizer


@dataclass
class Reply:
    id: str
    model: str
    blocks: list[dict[str, Any]]
    block_tokens: list[int]
    stop_reason: str
    usage: dict[str, Any]
    hidden_tokens: int = 0  # billed thinking no block shows: time before the first block


def _stop(reply: Reply) -> tuple[str, str | None]:
    if reply.stop_reason.startswith("stop_sequence:"):
        return "stop_sequence", reply.stop_reason.split(":", 1)[1]
    return reply.stop_reason, None


def whole_message(reply: Reply) -> dict[str, Any]:
    stop_reason, stop_sequence = _stop(reply)
    return {
        "id": reply.id,
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": reply.blocks,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": reply.usage,
    }


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _block_events(
    index: int, block: dict[str, Any], tokens: int, tok: Tokenizer
) -> tuple[list[bytes], list[int]]:
    kind = block["type"]
    start_block: dict[str, Any]
    deltas: list[tuple[dict[str, Any], int]] = []
    if kind == "text":
        start_block = {"type": "text", "text": ""}
        deltas = [
            ({"type": "citations_delta", "citation": c}, 0) for c in block.get("citations") or ()
        ]
        deltas += [({"type": "text_delta", "text": p}, n) for p, n in tok.pieces(block["text"])]
    elif kind == "thinking":
        start_block = {"type": "thinking", "thinking": "", "signature": ""}
        pieces = tok.pieces(block["thinking"])
        deltas = [({"type": "thinking_delta", "thinking": p}, n) for p, n in pieces]
        # thinking not shown (omitted, or beyond its summary): its time passes before the signature
        hidden = max(tokens - sum(n for _, n in pieces), 0)
        deltas.append(({"type": "signature_delta", "signature": block["signature"]}, hidden))
    elif kind in ("tool_use", "server_tool_use"):
        start_block = {**block, "input": {}}
        raw = orjson.dumps(block["input"]).decode()
        deltas = [({"type": "input_json_delta", "partial_json": p}, n) for p, n in tok.pieces(raw)]
    else:  # redacted_thinking and web_search_tool_result arrive whole
        start_block = block
    events = [
        _event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start_block},
        )
    ]
    counts = [0]
    for delta, n in deltas:
        events.append(
            _event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        )
        counts.append(n)
    events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    counts.append(0 if kind != "redacted_thinking" else tokens)
    return events, counts


async def stream_reply(
    request: web.Request, state: SimState, reply: Reply, faults: Faults, timing: Pace
) -> web.StreamResponse:
    tok = state.tokenizer
    start_message = {
        **whole_message(reply),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }
    start_message["usage"] = {**reply.usage, "output_tokens": 1}
    events = [
        _event("message_start", {"type": "message_start", "message": start_message}),
        _event("ping", {"type": "ping"}),
    ]
    counts = [0, 0]
    for index, (block, tokens) in enumerate(zip(reply.blocks, reply.block_tokens, strict=True)):
        block_events, block_counts = _block_events(index, block, tokens, tok)
        events += block_events
        counts += block_counts
    stop_reason, stop_sequence = _stop(reply)
    events.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": reply.usage,
            },
        )
    )
    events.append(_event("message_stop", {"type": "message_stop"}))
    counts += [0, 0]
    response = await open_stream(request, {"request-id": reply.id})
    if faults.disconnect_after is not None:
        n = min(faults.disconnect_after, len(events))
        await send_events(response, events[:n], counts[:n], timing)
        drop_connection(request)
        return response
    if faults.error_after is not None:
        n = min(faults.error_after, len(events))
        error = _event(
            "error",
            {
                "type": "error",
                "error": {
                    "type": "overloaded_error",
                    "message": f"Simulated error after {n} events (sim error_after).",
                },
            },
        )
        await send_events(response, [*events[:n], error], [*counts[:n], 0], timing)
    else:
        await send_events(response, events, counts, timing)
    await response.write_eof()
    return response
