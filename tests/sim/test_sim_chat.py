"""Chat completions through the official OpenAI SDK: text, streaming, caps, tools, errors."""

import json

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from farebox.sim import SimConfig, SimServer, start_sim
from farebox.sim.openai_chat import PER_MESSAGE_TOKENS, PRIMING_TOKENS
from farebox.sim.tokens import Tokenizer

from sim_support import PROMPT, cycled, openai_client, user

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
OTHER_TOOL = {"type": "function", "function": {"name": "search", "parameters": {}}}


async def test_non_stream_answer_and_usage(client: AsyncOpenAI, tok: Tokenizer) -> None:
    reply = await client.chat.completions.create(model="any-model", messages=user())
    choice = reply.choices[0]
    assert reply.model == "any-model"
    assert reply.object == "chat.completion"
    assert choice.message.role == "assistant"
    assert choice.message.content == cycled(PROMPT, 20)
    assert choice.finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 20 == tok.count(choice.message.content)
    assert reply.usage.prompt_tokens == PRIMING_TOKENS + PER_MESSAGE_TOKENS + tok.count(PROMPT)
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 20


async def test_stream_with_usage(client: AsyncOpenAI, tok: Tokenizer) -> None:
    stream = await client.chat.completions.create(
        model="m",
        messages=user(),
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"sim": {"output_tokens": 12}},
    )
    chunks = [chunk async for chunk in stream]
    content_chunks = [c for c in chunks if c.choices]
    text = "".join(c.choices[0].delta.content or "" for c in content_chunks)
    assert content_chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in content_chunks] == [None] * 11 + ["stop"]
    assert text == cycled(PROMPT, 12)
    final = chunks[-1]
    assert final.choices == [] and final.usage is not None
    assert final.usage.completion_tokens == len(content_chunks) == tok.count(text) == 12
    assert all(c.object == "chat.completion.chunk" and c.model == "m" for c in chunks)


async def test_stream_without_include_usage_sends_no_usage(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model="m", messages=user(), stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(c.usage is None and c.choices for c in chunks)


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_cap_ends_with_length(client: AsyncOpenAI, field: str) -> None:
    reply = await client.chat.completions.create(model="m", messages=user(), **{field: 5})
    assert reply.choices[0].finish_reason == "length"
    assert reply.choices[0].message.content == cycled(PROMPT, 5)
    assert reply.usage is not None and reply.usage.completion_tokens == 5


async def test_cap_above_natural_length_stops_naturally(client: AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="m", messages=user(), max_tokens=100, extra_body={"sim": {"output_tokens": 4}}
    )
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens == 4


async def test_stream_cap(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="m", messages=user(), stream=True, max_tokens=3
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == cycled(PROMPT, 3)
    assert chunks[-1].choices[0].finish_reason == "length"


async def test_prompt_is_the_last_user_message_text_parts(client: AsyncOpenAI) -> None:
    messages = [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "red"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": "green blue"},
            ],
        },
    ]
    reply = await client.chat.completions.create(model="m", messages=messages, max_tokens=4)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "red green blue red"


async def test_tool_call_non_stream(client: AsyncOpenAI, tok: Tokenizer) -> None:
    reply = await client.chat.completions.create(
        model="m",
        messages=user("weather in Paris"),
        tools=[OTHER_TOOL, WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "weather in Paris", "days": 3}
    expected = tok.count("get_weather") + tok.count(call.function.arguments)
    assert reply.usage is not None and reply.usage.completion_tokens == expected


async def test_tool_call_stream_assembled_by_the_sdk(client: AsyncOpenAI) -> None:
    async with client.chat.completions.stream(
        model="m",
        messages=user("weather in Paris"),  # type: ignore[arg-type]
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        stream_options={"include_usage": True},
        extra_body={"sim": {"tool_call": True}},
    ) as stream:
        final = await stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "weather in Paris", "days": 3}
    assert final.usage is not None and final.usage.completion_tokens > 0


async def test_tools_without_a_forced_call_answer_text(client: AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="m",
        messages=user(),
        tools=[WEATHER_TOOL],
        max_tokens=2,  # type: ignore[list-item]
    )
    assert reply.choices[0].message.content == "Say hello"
    assert reply.choices[0].message.tool_calls is None


async def test_required_tool_choice_calls_the_first_tool(client: AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="m",
        messages=user(),
        tools=[OTHER_TOOL, WEATHER_TOOL],
        tool_choice="required",  # type: ignore[list-item]
    )
    calls = reply.choices[0].message.tool_calls
    assert calls is not None and calls[0].function.name == "search"
    assert json.loads(calls[0].function.arguments) == {"input": PROMPT}


async def test_tool_results_in_the_conversation_are_answered_with_text(client: AsyncOpenAI) -> None:
    messages = [
        {"role": "user", "content": "weather in Paris"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    reply = await client.chat.completions.create(
        model="m",
        messages=messages,
        tools=[WEATHER_TOOL],
        max_tokens=3,  # type: ignore[arg-type,list-item]
    )
    assert reply.choices[0].message.content == "weather in Paris"
    assert reply.choices[0].finish_reason == "length"


async def test_models_list(client: AsyncOpenAI) -> None:
    ids = [model.id async for model in client.models.list()]
    assert ids == list(SimConfig().models)


async def test_missing_model_is_a_400(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="", messages=user())
    assert caught.value.param == "model"


async def test_malformed_json_and_missing_auth(sim: SimServer) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as http:
        bad = await http.post(
            "/v1/chat/completions", content=b"{nope", headers={"Authorization": "Bearer k"}
        )
        anonymous = await http.post("/v1/chat/completions", json={"model": "m", "messages": user()})
    assert bad.status_code == 400
    assert set(bad.json()["error"]) == {"message", "type", "param", "code"}
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "invalid_api_key"


async def test_configured_api_key_is_required() -> None:
    server = await start_sim(SimConfig(api_key="sk-right"))
    try:
        wrong = openai_client(f"{server.url}/v1", api_key="sk-wrong")
        right = openai_client(f"{server.url}/v1", api_key="sk-right")
        with pytest.raises(openai.AuthenticationError):
            await wrong.chat.completions.create(model="m", messages=user())
        reply = await right.chat.completions.create(model="m", messages=user())
        assert reply.choices[0].message.content
        await wrong.close()
        await right.close()
    finally:
        await server.close()
