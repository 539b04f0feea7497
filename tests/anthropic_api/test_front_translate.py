"""Anthropic Messages <-> OpenAI chat on the front: what each field becomes, block by block."""

from __future__ import annotations

from typing import Any

import orjson

from farebox.anthropic.front_request import translate
from farebox.anthropic.front_response import to_message
from farebox.anthropic.front_stream import StreamTranslator

SIGNED = {"type": "thinking", "thinking": "Let me look it up.", "signature": "sig-abc=="}
REDACTED = {"type": "redacted_thinking", "data": "EncryptedBlob=="}
TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}


def openai(body: dict[str, Any], max_output: int = 4096) -> dict[str, Any]:
    return translate({"model": "m", "max_tokens": 100, **body}, max_output).openai


def test_system_string_and_blocks_become_one_leading_system_message() -> None:
    out = openai(
        {
            "system": [
                {"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "B"},
            ],
            "messages": [{"role": "user", "content": "hi"}],
        }
    )
    assert out["messages"] == [
        {"role": "system", "content": "A\n\nB"},
        {"role": "user", "content": "hi"},
    ]
    assert openai({"system": "S", "messages": [{"role": "user", "content": "hi"}]})["messages"][
        0
    ] == {"role": "system", "content": "S"}


def test_system_role_messages_inside_the_conversation() -> None:
    out = openai(
        {
            "system": "S",
            "messages": [
                {"role": "system", "content": "first"},
                {"role": "user", "content": [{"type": "text", "text": "say pong"}]},
                {"role": "system", "content": [{"type": "text", "text": "# Environment"}]},
            ],
        }
    )
    assert out["messages"] == [
        {"role": "system", "content": "S\n\nfirst"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "say pong"},
                {"type": "text", "text": "<system-reminder>\n# Environment\n</system-reminder>"},
            ],
        },
    ]


def test_thinking_and_redacted_thinking_keep_their_signatures() -> None:
    out = openai(
        {
            "messages": [
                {"role": "user", "content": "list files"},
                {"role": "assistant", "content": [SIGNED, REDACTED, TOOL_USE]},
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a b"}
                    ],
                },
            ]
        }
    )
    assistant = out["messages"][1]
    assert assistant["content"] is None
    assert assistant["reasoning_content"] == "Let me look it up."
    assert assistant["reasoning_details"] == [
        {
            "type": "reasoning.text",
            "text": "Let me look it up.",
            "format": "anthropic-claude-v1",
            "signature": "sig-abc==",
            "index": 0,
        },
        {
            "type": "reasoning.encrypted",
            "data": "EncryptedBlob==",
            "format": "anthropic-claude-v1",
            "index": 1,
        },
    ]
    assert assistant["tool_calls"] == [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "Bash", "arguments": '{"command":"ls"}'},
        }
    ]
    assert out["messages"][2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "a b"}


def test_tool_results_come_first_then_the_rest_of_the_user_turn() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}
    out = openai(
        {
            "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [TOOL_USE]},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "and also"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "is_error": True,
                            "content": [{"type": "text", "text": "denied"}, image],
                        },
                    ],
                },
            ]
        }
    )
    assert out["messages"][2] == {
        "role": "tool",
        "tool_call_id": "toolu_1",
        "content": "Error: denied",
    }
    assert out["messages"][3] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "and also"},
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
        ],
    }


def test_images_documents_and_search_results() -> None:
    out = openai(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "AAA"},
                        },
                        {
                            "type": "document",
                            "title": "notes",
                            "source": {"type": "text", "media_type": "text/plain", "data": "N"},
                        },
                        {
                            "type": "document",
                            "source": {
                                "type": "base64",
                                "media_type": "application/pdf",
                                "data": "JVBER",
                            },
                        },
                        {
                            "type": "search_result",
                            "title": "T",
                            "source": "https://s",
                            "content": [{"type": "text", "text": "C"}],
                        },
                    ],
                }
            ]
        }
    )
    assert out["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
        {"type": "text", "text": '<document title="notes">\nN\n</document>'},
        {
            "type": "file",
            "file": {"filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBER"},
        },
        {"type": "text", "text": "T (https://s)\nC"},
    ]


def test_tools_choice_and_deferred_tools() -> None:
    schema = {"type": "object", "properties": {}}
    tools = [
        {"name": "Bash", "description": "run", "input_schema": schema},
        {"name": "Later", "input_schema": schema, "defer_loading": True},
        {"name": "Loaded", "input_schema": schema, "defer_loading": True},
        {"type": "web_search_20250305", "name": "web_search"},
    ]
    out = openai(
        {
            "tools": tools,
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": [TOOL_USE]},
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "content": [{"type": "tool_reference", "tool_name": "Loaded"}],
                        }
                    ],
                },
            ],
        }
    )
    assert [t["function"]["name"] for t in out["tools"]] == ["Bash", "Loaded"]
    assert out["tools"][0]["function"] == {
        "name": "Bash",
        "parameters": schema,
        "description": "run",
    }
    assert out["tool_choice"] == "required"
    assert out["parallel_tool_calls"] is False
    named = openai(
        {
            "tools": tools[:1],
            "tool_choice": {"type": "tool", "name": "Bash"},
            "messages": [{"role": "user", "content": "x"}],
        }
    )
    assert named["tool_choice"] == {"type": "function", "function": {"name": "Bash"}}


def test_sampling_stops_and_passthrough() -> None:
    out = translate(
        {
            "model": "m",
            "max_tokens": 128000,
            "messages": [{"role": "user", "content": "x"}],
            "temperature": 0.5,
            "top_p": 0.9,
            "top_k": 40,
            "stop_sequences": ["###"],
            "metadata": {"user_id": "device"},
            "thinking": {"type": "enabled", "budget_tokens": 2000},
            "context_management": {"edits": []},
            "plugins": [{"id": "web"}],
            "n": 3,
            "stream": True,
        },
        max_output=4096,
    )
    body = out.openai
    assert body["max_tokens"] == 4096 and out.max_tokens == 128000
    assert body["temperature"] == 0.5 and body["top_p"] == 0.9 and body["top_k"] == 40
    assert body["stop"] == ["###"] and out.stop_sequences == ("###",)
    assert body["plugins"] == [{"id": "web"}]
    for anthropic_only in ("metadata", "thinking", "context_management", "stop_sequences", "n"):
        assert anthropic_only not in body
    assert body["stream"] is True


def test_completion_to_message_with_thinking_tools_and_cache_usage() -> None:
    completion = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "Checking.",
                    "reasoning_content": "Let me look it up.",
                    "reasoning_details": [
                        {"type": "reasoning.text", "text": "Let me look it up.", "signature": "s"},
                        {"type": "reasoning.encrypted", "data": "D"},
                    ],
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "Bash", "arguments": '{"command": "ls"}'},
                        }
                    ],
                },
            }
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 30},
            "cost": 0.0012,
        },
    }
    message = to_message(
        completion, message_id="msg_1", model="m", stop_sequences=(), omit_thinking=False
    )
    assert message["content"] == [
        {"type": "thinking", "thinking": "Let me look it up.", "signature": "s"},
        {"type": "redacted_thinking", "data": "D"},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "ls"}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {
        "input_tokens": 10,
        "cache_creation_input_tokens": 30,
        "cache_read_input_tokens": 60,
        "output_tokens": 20,
        "cost": 0.0012,
    }


def test_stop_sequence_is_reported_when_the_upstream_names_it() -> None:
    completion = {
        "choices": [{"finish_reason": "stop", "stop_reason": "###", "message": {"content": "a"}}]
    }
    message = to_message(
        completion, message_id="m", model="m", stop_sequences=("###",), omit_thinking=False
    )
    assert (message["stop_reason"], message["stop_sequence"]) == ("stop_sequence", "###")


def events(raw: list[bytes]) -> list[dict[str, Any]]:
    out = []
    for chunk in raw:
        for block in chunk.decode().split("\n\n"):
            if block:
                data = block.split("\n", 1)[1]
                out.append(orjson.loads(data[6:]))
    return out


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_stream_translation_block_by_block() -> None:
    t = StreamTranslator(
        message_id="msg_1", model="m", input_tokens=7, stop_sequences=(), omit_thinking=False
    )
    raw = [t.start()]
    for c in [
        chunk({"role": "assistant", "reasoning_content": "Think"}),
        chunk({"reasoning_content": "ing."}),
        chunk({"reasoning_details": [{"type": "reasoning.text", "text": "", "signature": "S1"}]}),
        chunk({"reasoning_details": [{"type": "reasoning.encrypted", "data": "R"}]}),
        chunk({"content": "Hello"}),
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": ""}}
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        chunk({}, "tool_calls"),
        {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 9, "cost": 0.1}},
    ]:
        raw += t.feed(c)
    raw += t.finish_events()
    got = events(raw)
    kinds = [(e["type"], (e.get("delta") or e.get("content_block") or {}).get("type")) for e in got]
    assert kinds == [
        ("message_start", None),
        ("ping", None),
        ("content_block_start", "thinking"),
        ("content_block_delta", "thinking_delta"),
        ("content_block_delta", "thinking_delta"),
        ("content_block_delta", "signature_delta"),
        ("content_block_stop", None),
        ("content_block_start", "redacted_thinking"),
        ("content_block_stop", None),
        ("content_block_start", "text"),
        ("content_block_delta", "text_delta"),
        ("content_block_stop", None),
        ("content_block_start", "tool_use"),
        ("content_block_delta", "input_json_delta"),
        ("content_block_delta", "input_json_delta"),
        ("content_block_stop", None),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert [e["index"] for e in got if e["type"] == "content_block_start"] == [0, 1, 2, 3]
    assert got[5]["delta"]["signature"] == "S1"
    assert got[12]["content_block"] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "f",
        "input": {},
    }
    assert got[-2]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert got[-2]["usage"]["output_tokens"] == 9 and got[-2]["usage"]["cost"] == 0.1


def test_stream_translation_of_a_broken_stream_ends_with_an_error() -> None:
    t = StreamTranslator(
        message_id="m", model="m", input_tokens=1, stop_sequences=(), omit_thinking=True
    )
    raw = t.feed(chunk({"reasoning_content": "secret"}))
    raw += t.feed({"error": {"message": "broke off", "type": "upstream_error"}})
    got = events(raw + t.finish_events())
    assert [e["type"] for e in got] == [
        "content_block_start",
        "content_block_stop",
        "message_delta",
        "error",
    ]
    assert got[-1]["error"] == {"type": "api_error", "message": "broke off"}
