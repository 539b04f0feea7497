"""/v1/messages over an OpenAI-compatible model, with the official anthropic SDK, billed exactly."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from support import NANOS, Gateway

WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def client(gw: Gateway, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=gw.url, max_retries=0)


def cost_nanos(usage: Any) -> int:
    return round(usage.model_extra["cost"] * NANOS)


def streamed(sdk: anthropic.Anthropic, **kwargs: Any) -> tuple[Any, int, list[Any]]:
    """Stream a message: the final message, the cost its message_delta reported, the events."""
    with sdk.messages.stream(**kwargs) as stream:
        events = list(stream)
        final = stream.get_final_message()
    (delta,) = [e for e in events if e.type == "message_delta"]
    return final, cost_nanos(delta.usage), events


def assert_settled(gw: Gateway, credit_id: str, granted_nanos: int) -> int:
    """Nothing reserved, what was spent equals the history's total, ledger clean."""
    balance, reserved = gw.nanos(credit_id)
    assert reserved == 0
    spent = granted_nanos - balance
    assert gw.history_total_nanos(credit_id) == spent
    report = gw.check()
    assert report.ok, report.problems
    return spent


def post(gw: Gateway, path: str, body: object, headers: dict[str, str]) -> httpx.Response:
    with gw.client() as c:
        return c.post(path, json=body, headers=headers)


def test_plain_message_is_answered_and_charged_exactly(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account(1)
    message = client(gateway, key).messages.create(
        model="test-model",
        max_tokens=64,
        system="You are terse.",
        messages=[{"role": "user", "content": "hello there farebox"}],
        extra_body={"sim": {"output_tokens": 6}},
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.model == "test-model"
    assert message.stop_reason == "end_turn"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text.startswith("hello there farebox")  # type: ignore[union-attr]
    usage = message.usage
    assert usage.output_tokens == 6 and usage.input_tokens > 0
    cost = cost_nanos(usage)
    assert cost == usage.input_tokens * 1_000 + 6 * 2_000  # $1 / $2 per 1M tokens
    assert assert_settled(gateway, credit_id, NANOS) == cost


def test_streaming_message_events_and_charge(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account(1)
    final, cost, streamed_events = streamed(
        client(gateway, key),
        model="test-model",
        max_tokens=100,
        messages=[{"role": "user", "content": "stream me some words"}],
        extra_body={"sim": {"output_tokens": 12}},
    )
    events = [e.type for e in streamed_events]
    assert events[0] == "message_start"
    assert "content_block_start" in events and "content_block_stop" in events
    assert events[-2:] == ["message_delta", "message_stop"]
    assert final.stop_reason == "end_turn"
    text = final.content[0].text  # type: ignore[union-attr]
    assert text.startswith("stream me some words")
    assert final.usage.output_tokens == 12
    assert cost == final.usage.input_tokens * 1_000 + 12 * 2_000
    assert assert_settled(gateway, credit_id, NANOS) == cost


def test_raw_stream_has_ping_and_typed_events(gateway: Gateway) -> None:
    _, key = gateway.create_account(1)
    with (
        gateway.client() as c,
        c.stream(
            "POST",
            "/v1/messages?beta=true",
            json={
                "model": "test-model",
                "max_tokens": 20,
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            },
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        ) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    names = [line[7:] for line in text.splitlines() if line.startswith("event: ")]
    assert names[:2] == ["message_start", "ping"]
    assert names[-1] == "message_stop"
    assert "text_delta" in text


@pytest.mark.parametrize("stream", [False, True])
def test_tool_use_round_trip(gateway: Gateway, stream: bool) -> None:
    credit_id, key = gateway.create_account(1)
    sdk = client(gateway, key)
    question = {"role": "user", "content": "what is the weather in Paris"}
    kwargs: dict[str, Any] = {
        "model": "test-model",
        "max_tokens": 200,
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "tool", "name": "get_weather"},
    }
    if stream:
        first, first_cost, events = streamed(sdk, messages=[question], **kwargs)
        deltas = [e.delta.type for e in events if e.type == "content_block_delta"]
        assert deltas and set(deltas) == {"input_json_delta"}
    else:
        first = sdk.messages.create(messages=[question], **kwargs)
        first_cost = cost_nanos(first.usage)
    assert first.stop_reason == "tool_use"
    (call,) = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "get_weather"
    assert call.input == {"city": "what is the weather in"}
    assert call.id
    second = sdk.messages.create(
        model="test-model",
        max_tokens=50,
        tools=[WEATHER_TOOL],
        messages=[
            question,
            {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": call.id,
                        "content": "sunny and 21 degrees",
                    }
                ],
            },
        ],
        extra_body={"sim": {"output_tokens": 5}},
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text"
    spent = assert_settled(gateway, credit_id, NANOS)
    assert spent == first_cost + cost_nanos(second.usage)


def test_claude_code_shape_is_accepted(gateway: Gateway) -> None:
    """System blocks with cache_control, a role:"system" message last, adaptive thinking,
    output_config, context_management, metadata and a deferred tool: all accepted."""
    credit_id, key = gateway.create_account(1)
    body = {
        "model": "test-model",
        "max_tokens": 128000,
        "stream": True,
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "medium"},
        "metadata": {"user_id": '{"device_id":"abc"}'},
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332;"},
            {
                "type": "text",
                "text": "You are a CLI agent.",
                "cache_control": {"type": "ephemeral"},
            },
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>Attribution</system-reminder>"},
                    {"type": "text", "text": "say pong"},
                ],
            },
            {
                "role": "system",
                "content": [
                    {
                        "type": "text",
                        "text": "# Environment\ncwd: /tmp",
                        "cache_control": {"type": "ephemeral"},
                    }
                ],
            },
        ],
        "tools": [
            {**WEATHER_TOOL, "name": "Bash"},
            {**WEATHER_TOOL, "name": "DeferredToolPlaceholder", "defer_loading": True},
        ],
    }
    headers = {
        "x-api-key": key,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
    }
    r = post(gateway, "/v1/messages?beta=true", body, headers)
    assert r.status_code == 200, r.text
    assert "event: message_stop" in r.text
    assert assert_settled(gateway, credit_id, NANOS) > 0


def test_bearer_auth_works_like_x_api_key(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account(1)
    sdk = anthropic.Anthropic(auth_token=key, base_url=gateway.url, max_retries=0)
    message = sdk.messages.create(
        model="test-model", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content
    assert assert_settled(gateway, credit_id, NANOS) == cost_nanos(message.usage)


def test_count_tokens_is_free_and_matches_the_request(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account(1)
    sdk = client(gateway, key)
    small = sdk.messages.count_tokens(
        model="test-model", messages=[{"role": "user", "content": "hi"}]
    )
    large = sdk.messages.count_tokens(
        model="test-model",
        system="You are a helpful assistant with a long system prompt.",
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "hi " * 50}],
    )
    assert 0 < small.input_tokens < large.input_tokens
    assert assert_settled(gateway, credit_id, NANOS) == 0


def test_input_tokens_reported_match_count_tokens(gateway: Gateway) -> None:
    _, key = gateway.create_account(1)
    sdk = client(gateway, key)
    messages: Any = [{"role": "user", "content": "count these words please"}]
    counted = sdk.messages.count_tokens(model="test-model", messages=messages)
    with (
        gateway.client() as c,
        c.stream(
            "POST",
            "/v1/messages",
            json={"model": "test-model", "max_tokens": 5, "stream": True, "messages": messages},
            headers={"x-api-key": key},
        ) as r,
    ):
        lines = r.iter_lines()
        first = next(lines)
        while not first.startswith("data: "):
            first = next(lines)
    assert f'"input_tokens":{counted.input_tokens},' in first


def test_max_tokens_above_the_model_maximum_is_lowered_not_refused(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account(1)
    final, cost, _ = streamed(
        client(gateway, key),
        model="test-model",  # max_output 4096
        max_tokens=128000,
        messages=[{"role": "user", "content": "hi"}],
    )
    assert final.stop_reason == "end_turn"
    assert assert_settled(gateway, credit_id, NANOS) == cost


def test_stream_stops_with_max_tokens_when_money_runs_out(gateway: Gateway) -> None:
    granted = 30_000_000  # $0.03 on pricey-model ($0.001 in, $0.002 out per token)
    credit_id, key = gateway.create_account("0.03")
    final, cost, _ = streamed(
        client(gateway, key),
        model="pricey-model",
        max_tokens=1000,
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"sim": {"output_tokens": 400}},
    )
    assert final.stop_reason == "max_tokens"
    assert 0 < final.usage.output_tokens < 400
    assert cost == final.usage.input_tokens * 1_000_000 + final.usage.output_tokens * 2_000_000
    assert assert_settled(gateway, credit_id, granted) == cost


def test_upstream_breaking_mid_stream_sends_an_error_event_and_charges_what_came(
    gateway: Gateway,
) -> None:
    credit_id, key = gateway.create_account(1)
    r = post(
        gateway,
        "/v1/messages",
        {
            "model": "test-model",
            "max_tokens": 100,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
            "sim": {"output_tokens": 50, "disconnect_after": 5},
        },
        {"x-api-key": key},
    )
    assert r.status_code == 200
    assert "event: error" in r.text and "event: message_stop" not in r.text
    assert '"output_tokens":5' in r.text
    spent = assert_settled(gateway, credit_id, NANOS)
    assert spent > 0


def test_fallback_route_answers_and_charges_once(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account(1)
    message = client(gateway, key).messages.create(
        model="fallback-model", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    assert assert_settled(gateway, credit_id, NANOS) == cost_nanos(message.usage)


def test_thinking_with_tools_on_an_openai_compatible_model(gateway: Gateway) -> None:
    """Thinking enabled, a signed thinking block and a redacted one before a tool_use in the
    history, then the tool_result: accepted and answered (LiteLLM #33224, #22997, #15601)."""
    credit_id, key = gateway.create_account(1)
    sdk = client(gateway, key)
    question: Any = {"role": "user", "content": "what is the weather in Paris"}
    thinking: Any = {"type": "enabled", "budget_tokens": 2048}
    first = sdk.messages.create(
        model="test-model",
        max_tokens=4000,
        thinking=thinking,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "auto"},
        messages=[question],
        extra_body={"sim": {"tool_call": True}},
    )
    (call,) = [b for b in first.content if b.type == "tool_use"]
    history: Any = [
        question,
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should look it up.", "signature": "c2ln"},
                {"type": "redacted_thinking", "data": "ZW5jcnlwdGVk"},
                {"type": "tool_use", "id": call.id, "name": call.name, "input": call.input},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21 C"},
                {"type": "text", "text": "and tomorrow?"},
            ],
        },
    ]
    for stream in (False, True):
        if stream:
            final, cost, _ = streamed(
                sdk,
                model="test-model",
                max_tokens=4000,
                thinking=thinking,
                tools=[WEATHER_TOOL],
                messages=history,
            )
        else:
            final = sdk.messages.create(
                model="test-model",
                max_tokens=4000,
                thinking=thinking,
                tools=[WEATHER_TOOL],
                messages=history,  # type: ignore[list-item]
            )
            cost = cost_nanos(final.usage)
        assert final.stop_reason == "end_turn" and final.content[-1].type == "text"
        assert cost > 0
    assert assert_settled(gateway, credit_id, NANOS) > 0


def test_the_readmes_stream_recipe_gives_the_cost_charged(gateway: Gateway) -> None:
    """The anthropic SDK's final message keeps only Anthropic's usage fields (it copies nothing
    else from message_delta), so the README reads a stream's cost from the event; that is the
    exact amount charged, and the final message's token counts agree with it."""
    credit_id, key = gateway.create_account(1)
    with client(gateway, key).messages.stream(
        model="test-model",
        max_tokens=64,
        messages=[{"role": "user", "content": "Hello"}],
        extra_body={"sim": {"output_tokens": 9}},
    ) as stream:
        cost = next(e.usage.model_extra["cost"] for e in stream if e.type == "message_delta")
        message = stream.get_final_message()
    assert message.usage.output_tokens == 9
    charged = assert_settled(gateway, credit_id, NANOS)
    assert round(cost * NANOS) == charged == message.usage.input_tokens * 1_000 + 9 * 2_000
