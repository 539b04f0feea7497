"""OpenAI chat -> an Anthropic Messages request, and an Anthropic stream -> OpenAI chunks."""

from __future__ import annotations

from typing import Any

import orjson

from farebox.anthropic.upstream_request import from_native, from_openai
from farebox.anthropic.upstream_response import ChunkTranslator, to_completion

TOOL = {
    "type": "function",
    "function": {"name": "f", "description": "d", "parameters": {"type": "object"}},
}


def test_messages_system_tools_and_results() -> None:
    body = from_openai(
        {
            "messages": [
                {"role": "system", "content": "S1"},
                {"role": "developer", "content": [{"type": "text", "text": "S2"}]},
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": None,
                    "reasoning_details": [
                        {"type": "reasoning.text", "text": "t", "signature": "s"},
                        {"type": "reasoning.text", "text": "unsigned"},
                        {"type": "reasoning.encrypted", "data": "r"},
                    ],
                    "tool_calls": [
                        {
                            "id": "a",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        },
                        {
                            "id": "b",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"x":1}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "a", "content": "ra"},
                {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "rb"}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
                        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
                    ],
                },
            ],
            "tools": [TOOL],
            "tool_choice": "required",
            "parallel_tool_calls": False,
            "temperature": 1.7,
            "stop": "###",
            "user": "u1",
        },
        "claude-x",
        stream=True,
        max_output=8000,
    )
    assert body["model"] == "claude-x" and body["max_tokens"] == 8000 and body["stream"] is True
    assert body["system"] == [{"type": "text", "text": "S1"}, {"type": "text", "text": "S2"}]
    user, assistant, results = body["messages"]
    assert user == {"role": "user", "content": [{"type": "text", "text": "q"}]}
    assert assistant["content"] == [
        {"type": "thinking", "thinking": "t", "signature": "s"},  # unsigned reasoning is left out
        {"type": "redacted_thinking", "data": "r"},
        {"type": "tool_use", "id": "a", "name": "f", "input": {}},
        {"type": "tool_use", "id": "b", "name": "f", "input": {"x": 1}},
    ]
    assert results["role"] == "user"
    assert results["content"] == [
        {"type": "tool_result", "tool_use_id": "a", "content": "ra"},
        {"type": "tool_result", "tool_use_id": "b", "content": [{"type": "text", "text": "rb"}]},
        {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}},
    ]
    assert body["tools"] == [{"name": "f", "input_schema": {"type": "object"}, "description": "d"}]
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert body["temperature"] == 1.0
    assert body["stop_sequences"] == ["###"]
    assert body["metadata"] == {"user_id": "u1"}


def test_reasoning_effort_turns_thinking_on_within_max_tokens() -> None:
    body = from_openai(
        {
            "messages": [{"role": "user", "content": "q"}],
            "reasoning_effort": "high",
            "max_tokens": 5000,
            "temperature": 0.3,
        },
        "m",
        stream=False,
        max_output=100,
    )
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4999}
    assert "temperature" not in body  # Anthropic refuses a temperature with thinking
    small = from_openai(
        {
            "messages": [{"role": "user", "content": "q"}],
            "reasoning_effort": "low",
            "max_tokens": 500,
        },
        "m",
        stream=False,
        max_output=100,
    )
    assert small["thinking"] == {"type": "disabled"}


def test_native_request_keeps_everything_but_takes_the_capped_max_tokens() -> None:
    native: dict[str, Any] = {
        "model": "claude-opus-5-5",
        "max_tokens": 128000,
        "thinking": {"type": "enabled", "budget_tokens": 31999},
        "metadata": {"user_id": "x"},
        "context_management": {"edits": []},
        "messages": [{"role": "user", "content": "q"}],
    }
    body = from_native(native, {"max_tokens": 20000}, "claude-opus-5-5-20261101", stream=True)
    assert body["model"] == "claude-opus-5-5-20261101" and body["max_tokens"] == 20000
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 19999}
    assert body["metadata"] == native["metadata"]
    assert body["context_management"] == native["context_management"]
    assert native["max_tokens"] == 128000  # the customer's request is not changed


def test_message_to_completion_maps_usage_and_stop() -> None:
    completion = to_completion(
        {
            "id": "msg_1",
            "model": "claude-x",
            "content": [{"type": "text", "text": "done ###"}],
            "stop_reason": "stop_sequence",
            "stop_sequence": "###",
            "usage": {
                "input_tokens": 10,
                "cache_creation_input_tokens": 20,
                "cache_read_input_tokens": 30,
                "output_tokens": 5,
            },
        }
    )
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["stop_reason"] == "###"
    assert completion["usage"] == {
        "prompt_tokens": 60,
        "completion_tokens": 5,
        "total_tokens": 65,
        "prompt_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 20},
    }


def chunks(raw: list[bytes]) -> list[dict[str, Any]]:
    out = []
    for piece in raw:
        for block in piece.decode().split("\n\n"):
            if block.startswith("data: {"):
                out.append(orjson.loads(block[6:]))
            elif block == "data: [DONE]":
                out.append({"done": True})
    return out


def test_stream_events_become_chunks_with_usage_at_the_end() -> None:
    t = ChunkTranslator()
    raw: list[bytes] = []
    for event in [
        {
            "type": "message_start",
            "message": {
                "id": "m1",
                "model": "c",
                "usage": {"input_tokens": 7, "cache_read_input_tokens": 3},
            },
        },
        {"type": "ping"},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "hm"},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "S"},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"a":'},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": "1}"},
        },
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop"},
    ]:
        raw += t.feed(event)
    got = chunks(raw)
    deltas = [c["choices"][0]["delta"] for c in got if c.get("choices")]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1] == {"reasoning_content": "hm"}
    assert deltas[2]["reasoning_details"][0]["signature"] == "S"
    assert deltas[3]["tool_calls"][0] == {
        "index": 0,
        "id": "t1",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    assert [d["tool_calls"][0]["function"]["arguments"] for d in deltas[4:6]] == ['{"a":', "1}"]
    finish = [c["choices"][0]["finish_reason"] for c in got if c.get("choices")]
    assert finish[-1] == "tool_calls"
    usage = got[-2]["usage"]
    assert usage["prompt_tokens"] == 10 and usage["completion_tokens"] == 9
    assert usage["prompt_tokens_details"]["cached_tokens"] == 3
    assert got[-1] == {"done": True} and t.done


def test_an_error_event_becomes_an_error_chunk() -> None:
    out = ChunkTranslator().feed(
        {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    )
    (chunk,) = chunks(out)
    assert chunk["error"]["message"] == "Anthropic: busy"
    assert chunk["error"]["type"] == "overloaded_error"
