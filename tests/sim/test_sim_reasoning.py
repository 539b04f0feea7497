"""The simulator's reasoning mode: hidden thinking tokens billed in the usage, bounded by the cap
the request sends (or not, with `ignore_cap`), and the request bodies it keeps."""

import anthropic
import httpx
from openai import AsyncOpenAI

from farebox.sim import SimServer

from sim_support import PROMPT, cycled, user


async def test_hidden_reasoning_counts_in_completion_tokens_but_never_shows(
    client: AsyncOpenAI,
) -> None:
    reply = await client.chat.completions.create(
        model="o-sim", messages=user(), extra_body={"sim": {"reasoning_tokens": 500}}
    )
    usage = reply.usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert reply.choices[0].message.content == cycled(PROMPT, 20)
    assert usage.completion_tokens_details.reasoning_tokens == 500
    assert usage.completion_tokens == 520
    assert reply.choices[0].finish_reason == "stop"


async def test_the_cap_bounds_reasoning_and_answer_together(client: AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="o-sim",
        messages=user(),
        max_completion_tokens=505,
        extra_body={"sim": {"reasoning_tokens": 500}},
    )
    assert reply.usage is not None and reply.usage.completion_tokens == 505
    assert reply.choices[0].message.content == cycled(PROMPT, 5)
    assert reply.choices[0].finish_reason == "length"
    starved = await client.chat.completions.create(
        model="o-sim",
        messages=user(),
        max_tokens=300,
        extra_body={"sim": {"reasoning_tokens": 500}},
    )
    assert starved.usage is not None and starved.usage.completion_tokens == 300
    assert starved.choices[0].message.content == ""
    assert starved.choices[0].finish_reason == "length"


async def test_a_stream_shows_only_the_answer_and_reports_the_reasoning(
    client: AsyncOpenAI,
) -> None:
    stream = await client.chat.completions.create(
        model="o-sim",
        messages=user(),
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=1000,
        extra_body={"sim": {"reasoning_tokens": 700}},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == cycled(PROMPT, 20)
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 720


async def test_ignore_cap_bills_beyond_the_cap(client: AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="o-sim",
        messages=user(),
        max_tokens=10,
        extra_body={"sim": {"reasoning_tokens": 5000, "ignore_cap": True}},
    )
    assert reply.usage is not None and reply.usage.completion_tokens == 5020


async def test_request_bodies_are_kept_for_tests_to_read(
    sim: SimServer, client: AsyncOpenAI
) -> None:
    await client.chat.completions.create(model="o-sim", messages=user("remember me"), max_tokens=7)
    async with httpx.AsyncClient(base_url=sim.url) as http:
        rows = (await http.get("/sim/requests", params={"last": "1"})).json()["data"]
        assert rows[0]["endpoint"] == "chat.completions"
        assert rows[0]["body"]["max_tokens"] == 7
        assert rows[0]["body"]["messages"][0]["content"] == "remember me"
        await http.post("/sim/reset")
        assert (await http.get("/sim/requests")).json()["data"] == []


async def test_anthropic_thinking_is_billed_in_full_within_budget_and_max_tokens(
    sim: SimServer,
) -> None:
    client = anthropic.AsyncAnthropic(api_key="sk-test", base_url=sim.url, max_retries=0)
    thinking = {"type": "enabled", "budget_tokens": 2000}
    message = await client.messages.create(
        model="claude-sim",
        max_tokens=3000,
        thinking=thinking,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": PROMPT}],
        extra_body={"sim": {"reasoning_tokens": 50_000}},
    )
    assert message.content[0].type == "thinking"
    assert message.usage.output_tokens == 2000 + 20  # the budget, then the whole answer
    hidden = await client.messages.create(
        model="claude-sim",
        max_tokens=600,
        messages=[{"role": "user", "content": PROMPT}],
        extra_body={"sim": {"reasoning_tokens": 50_000}},
    )
    assert [block.type for block in hidden.content] == ["text"]
    assert hidden.usage.output_tokens == 600  # thinking took all of max_tokens
    assert hidden.stop_reason == "max_tokens"
    rows = sim.state.received
    assert rows[-1][0] == "messages" and rows[-1][1]["max_tokens"] == 600
    await client.close()
