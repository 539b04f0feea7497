"""Anthropic-upstream models (the simulator's Messages API) behind both fronts: the anthropic SDK
natively (thinking signatures, betas, caching priced at the cache rates) and the openai SDK
translated both ways (streaming tool calls, reasoning kept across turns)."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from farebox.sim.anthropic_messages import ANTHROPIC_STATE, REDACTED_TRIGGER, sign
from farebox.sim.server import SimServer

from support import NANOS, Gateway

BASH: dict[str, Any] = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
        "required": ["command"],
    },
}
OPENAI_BASH: Any = {
    "type": "function",
    "function": {
        "name": "Bash",
        "description": "Run a shell command",
        "parameters": BASH["input_schema"],
    },
}
THINKING: Any = {"type": "enabled", "budget_tokens": 1024}
# Prices of claude-test, in nanodollars per token.
IN, OUT, CACHE_READ, CACHE_WRITE = 1_000, 2_000, 100, 1_250


def sdk(gw: Gateway, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=gw.url, max_retries=0)


def oai(gw: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=gw.url + "/v1", max_retries=0)


def cost_nanos(usage: Any) -> int:
    return round(usage.model_extra["cost"] * NANOS)


def priced(usage: Any) -> int:
    """What claude-test's rates make of an Anthropic usage."""
    return (
        usage.input_tokens * IN
        + usage.cache_read_input_tokens * CACHE_READ
        + usage.cache_creation_input_tokens * CACHE_WRITE
        + usage.output_tokens * OUT
    )


def assert_settled(gw: Gateway, credit_id: str, granted: int = NANOS) -> int:
    balance, reserved = gw.nanos(credit_id)
    assert reserved == 0
    spent = granted - balance
    assert gw.history_total_nanos(credit_id) == spent
    report = gw.check()
    assert report.ok, report.problems
    return spent


def last_upstream_request(sim: SimServer, marker: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The last Messages request the simulator saw whose body mentions `marker`."""
    for headers, body in reversed(sim.app[ANTHROPIC_STATE].recent):
        if marker in str(body):
            return headers, body
    raise AssertionError(f"no upstream request mentions {marker!r}")


def test_native_request_passes_through_with_betas_and_metadata(
    gateway: Gateway, sim: SimServer
) -> None:
    credit_id, key = gateway.create_account(1)
    message = sdk(gateway, key).messages.create(
        model="claude-test",
        max_tokens=64,
        system=[
            {"type": "text", "text": "native-marker-1", "cache_control": {"type": "ephemeral"}}
        ],
        metadata={"user_id": "u-1"},
        messages=[{"role": "user", "content": "hello native world"}],
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"},
        extra_query={"beta": "true"},
    )
    assert message.content[0].text.startswith("hello native world")  # type: ignore[union-attr]
    headers, body = last_upstream_request(sim, "native-marker-1")
    assert headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["query"] == "beta=true"
    assert body["model"] == "claude-sim"  # the route's upstream id
    assert body["metadata"] == {"user_id": "u-1"}
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert assert_settled(gateway, credit_id) == cost_nanos(message.usage) == priced(message.usage)


def test_prompt_cache_writes_then_reads_at_the_cache_rates(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account(1)
    system: Any = [
        {
            "type": "text",
            "text": f"cache marker {credit_id} " + "long instructions " * 40,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    usages = []
    for _ in range(2):
        message = sdk(gateway, key).messages.create(
            model="claude-test",
            max_tokens=20,
            system=system,
            messages=[{"role": "user", "content": "hi"}],
        )
        usages.append(message.usage)
    first, second = usages
    assert first.cache_creation_input_tokens > 40 and first.cache_read_input_tokens == 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0
    for usage in usages:
        assert cost_nanos(usage) == priced(usage)
    assert cost_nanos(second) < cost_nanos(first)
    assert assert_settled(gateway, credit_id) == priced(first) + priced(second)


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_with_tools_round_trips_signed_blocks(
    gateway: Gateway, sim: SimServer, stream: bool
) -> None:
    """Thinking + tool_use, then the blocks sent back unchanged: the upstream verifies each
    signature (the simulator refuses a wrong one, as Anthropic does)."""
    credit_id, key = gateway.create_account(1)
    client = sdk(gateway, key)
    prompt = f"run `echo hi` please {REDACTED_TRIGGER}"
    args: dict[str, Any] = {
        "model": "claude-test",
        "max_tokens": 3000,
        "thinking": THINKING,
        "tools": [BASH],
        "tool_choice": {"type": "auto"},
    }
    question: Any = {"role": "user", "content": prompt}
    if stream:
        with client.messages.stream(
            messages=[question], **args, extra_body={"sim": {"tool_call": True}}
        ) as s:
            events = list(s)
            first = s.get_final_message()
        deltas = {e.delta.type for e in events if e.type == "content_block_delta"}
        assert {"thinking_delta", "signature_delta", "input_json_delta"} <= deltas
        first_cost = round(
            next(e for e in events if e.type == "message_delta").usage.model_extra["cost"] * NANOS
        )
    else:
        first = client.messages.create(
            messages=[question], **args, extra_body={"sim": {"tool_call": True}}
        )
        first_cost = cost_nanos(first.usage)
    kinds = [b.type for b in first.content]
    assert kinds == ["thinking", "redacted_thinking", "tool_use"]
    thinking = first.content[0]
    assert thinking.thinking and thinking.signature  # type: ignore[union-attr]
    assert first.content[2].input == {"command": "echo hi"}  # type: ignore[union-attr]
    assert first.stop_reason == "tool_use"
    assert first_cost == priced(first.usage)
    # thinking is billed as output: the output count covers the thinking tokens too
    assert first.usage.output_tokens > 8
    second = client.messages.create(
        messages=[
            question,
            {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": first.content[2].id, "content": "hi"}  # type: ignore[union-attr]
                ],
            },
        ],
        **args,
    )
    assert second.stop_reason == "end_turn"
    _, body = last_upstream_request(sim, "tool_result")
    sent_back = body["messages"][1]["content"]
    assert sent_back[0]["signature"] == thinking.signature  # type: ignore[union-attr]
    assert sent_back[1]["type"] == "redacted_thinking"
    assert assert_settled(gateway, credit_id) == first_cost + cost_nanos(second.usage)


def test_a_tampered_thinking_block_is_refused_by_the_upstream_and_free(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account(1)
    with pytest.raises(anthropic.BadRequestError) as info:
        sdk(gateway, key).messages.create(
            model="claude-test",
            max_tokens=3000,
            thinking=THINKING,
            messages=[
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": [{"type": "thinking", "thinking": "x", "signature": "forged"}],
                },
                {"role": "user", "content": "again"},
            ],
        )
    assert "signature" in str(info.value)
    assert assert_settled(gateway, credit_id) == 0


def test_openai_sdk_on_an_anthropic_model(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account(1)
    completion = oai(gateway, key).chat.completions.create(
        model="claude-test",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello from openai"},
        ],
        max_tokens=30,
        extra_body={"sim": {"output_tokens": 4}},
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content and choice.message.content.startswith("hello")
    usage = completion.usage
    assert usage is not None and usage.completion_tokens == 4
    cost = round(usage.model_extra["cost"] * NANOS)  # type: ignore[index]
    assert cost == usage.prompt_tokens * IN + 4 * OUT
    assert assert_settled(gateway, credit_id) == cost


def test_openai_sdk_streaming_tool_calls_on_an_anthropic_model(
    gateway: Gateway, sim: SimServer
) -> None:
    credit_id, key = gateway.create_account(1)
    client = oai(gateway, key)
    question: Any = {"role": "user", "content": "please run `ls -la` for me"}
    stream = client.chat.completions.create(
        model="claude-test",
        messages=[question],
        tools=[OPENAI_BASH],
        tool_choice="required",
        reasoning_effort="low",
        max_tokens=3000,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
    )
    details = [
        d
        for c in chunks
        if c.choices
        for d in (c.choices[0].delta.model_extra or {}).get("reasoning_details") or ()
    ]
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert reasoning and details and details[0]["signature"]
    assert calls[0].id and calls[0].function and calls[0].function.name == "Bash"
    arguments = "".join(tc.function.arguments or "" for tc in calls if tc.function)
    assert arguments == '{"command":"ls -la"}'
    assert finishes == ["tool_calls"]
    usage = chunks[-1].usage
    assert usage is not None
    first_cost = round(usage.model_extra["cost"] * NANOS)  # type: ignore[index]
    assert first_cost == usage.prompt_tokens * IN + usage.completion_tokens * OUT
    # the next turn carries the reasoning back (signature intact) with the tool result
    assistant: Any = {
        "role": "assistant",
        "content": None,
        "reasoning_details": details,
        "tool_calls": [
            {
                "id": calls[0].id,
                "type": "function",
                "function": {"name": "Bash", "arguments": arguments},
            }
        ],
    }
    second = client.chat.completions.create(
        model="claude-test",
        messages=[
            question,
            assistant,
            {"role": "tool", "tool_call_id": calls[0].id, "content": "total 0"},
        ],
        tools=[OPENAI_BASH],
        reasoning_effort="low",
        max_tokens=3000,
    )
    assert second.choices[0].finish_reason == "stop"
    _, body = last_upstream_request(sim, "total 0")
    assert [b["type"] for b in body["messages"][1]["content"]] == ["thinking", "tool_use"]
    assert body["messages"][2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": calls[0].id,
        "content": "total 0",
    }
    second_cost = round(second.usage.model_extra["cost"] * NANOS)  # type: ignore[union-attr, index]
    assert assert_settled(gateway, credit_id) == first_cost + second_cost


@pytest.mark.parametrize("front", ["anthropic", "openai"])
def test_fallback_from_an_overloaded_anthropic_route_to_an_openai_one(
    gateway: Gateway, front: str
) -> None:
    credit_id, key = gateway.create_account(1)
    if front == "anthropic":
        message = sdk(gateway, key).messages.create(
            model="claude-haiku-5-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
        cost = cost_nanos(message.usage)
    else:
        completion = oai(gateway, key).chat.completions.create(
            model="claude-fallback", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
        cost = round(completion.usage.model_extra["cost"] * NANOS)  # type: ignore[union-attr, index]
    assert cost > 0
    assert assert_settled(gateway, credit_id) == cost


def test_upstream_refusal_passes_back_as_a_clear_free_400(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account(1)
    with pytest.raises(openai.BadRequestError) as info:
        oai(gateway, key).chat.completions.create(
            model="claude-test",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"thinking": {"type": "enabled", "budget_tokens": 10}},
        )
    assert "budget_tokens" in str(info.value)
    assert assert_settled(gateway, credit_id) == 0


def test_claude_code_model_ids_are_aliases(gateway: Gateway) -> None:
    _, key = gateway.create_account(1)
    for alias in ("claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"):
        count = sdk(gateway, key).messages.count_tokens(
            model=alias, messages=[{"role": "user", "content": "hi"}]
        )
        assert count.input_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_count_above_the_hold_is_held_and_charged_in_full(
    gateway: Gateway, stream: bool
) -> None:
    """Our prompt estimate leaves out thinking sent back; the upstream counts it. The
    difference is held at settlement and charged, not lost (charged == usage x price)."""
    credit_id, key = gateway.create_account(1)
    thought = "a long chain of thought " * 800  # ~4000 tokens our estimate does not count
    body: dict[str, Any] = {
        "model": "claude-test",
        "max_tokens": 1100,  # held output (2.2M nanos) is less than the uncounted input (4M)
        "thinking": THINKING,
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": thought, "signature": sign(thought)},
                    {"type": "text", "text": "hello"},
                ],
            },
            {"role": "user", "content": "and again"},
        ],
        "extra_body": {"sim": {"output_tokens": 3}},
    }
    count = sdk(gateway, key).messages.count_tokens(model="claude-test", messages=body["messages"])
    if stream:
        with sdk(gateway, key).messages.stream(**body) as s:
            events = list(s)
            usage = s.get_final_message().usage
        charged = round(
            next(e for e in events if e.type == "message_delta").usage.model_extra["cost"] * NANOS
        )
    else:
        message = sdk(gateway, key).messages.create(**body)
        usage, charged = message.usage, cost_nanos(message.usage)
    assert usage.input_tokens > count.input_tokens + 3000  # the upstream counted far more
    assert charged == priced(usage)
    assert assert_settled(gateway, credit_id) == charged
