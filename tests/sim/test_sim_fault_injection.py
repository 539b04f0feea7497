"""Injected faults as a client sees them: statuses, hangs, cut streams, fail_first, counters."""

import time

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from farebox.sim import SimConfig, SimServer, start_sim

from sim_support import PROMPT, cycled, openai_client, user


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
async def test_status_from_the_body(
    client: AsyncOpenAI, status: int, error_class: type[openai.APIStatusError]
) -> None:
    with pytest.raises(error_class) as caught:
        await client.chat.completions.create(
            model="m", messages=user(), extra_body={"sim": {"status": status}}
        )
    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict) and "message" in caught.value.body


async def test_429_says_retry_after(sim: SimServer) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as http:
        reply = await http.post(
            "/sim/status=429/v1/chat/completions",
            json={"model": "m", "messages": user()},
            headers={"Authorization": "Bearer k"},
        )
    assert reply.status_code == 429
    assert reply.headers["retry-after"] == "1"
    assert reply.json()["error"]["code"] == "sim_status"


async def test_prefix_fails_one_base_url_and_not_the_other(sim: SimServer) -> None:
    failing = openai_client(f"{sim.url}/sim/status=503/v1")
    healthy = openai_client(f"{sim.url}/v1")
    with pytest.raises(openai.InternalServerError):
        await failing.chat.completions.create(model="m", messages=user())
    with pytest.raises(openai.InternalServerError):
        await failing.models.list()
    reply = await healthy.chat.completions.create(model="m", messages=user())
    assert reply.choices[0].finish_reason == "stop"
    await failing.close()
    await healthy.close()


async def test_body_overrides_the_prefix(sim: SimServer) -> None:
    sdk = openai_client(f"{sim.url}/sim/status=503/v1")
    with pytest.raises(openai.RateLimitError):
        await sdk.chat.completions.create(
            model="m", messages=user(), extra_body={"sim": {"status": 429}}
        )
    await sdk.close()


async def test_bad_fault_spec_is_a_400(sim: SimServer) -> None:
    sdk = openai_client(f"{sim.url}/sim/explode=1/v1")
    with pytest.raises(openai.BadRequestError, match="explode"):
        await sdk.chat.completions.create(model="m", messages=user())
    await sdk.close()


async def test_disconnect_after_breaks_the_stream(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="m",
        messages=user(),
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"sim": {"disconnect_after": 3}},
    )
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == cycled(PROMPT, 3)


async def test_disconnect_after_everything_still_withholds_the_end(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="m",
        messages=user(),
        stream=True,
        extra_body={"sim": {"disconnect_after": 100, "output_tokens": 4}},
    )
    received = 0
    with pytest.raises(openai.APIConnectionError):
        async for _ in stream:
            received += 1
    assert received == 4


async def test_error_after_sends_an_error_event(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="m", messages=user(), stream=True, extra_body={"sim": {"error_after": 2}}
    )
    received = 0
    with pytest.raises(openai.APIError, match="error_after"):
        async for _ in stream:
            received += 1
    assert received == 2


async def test_hang_times_the_client_out(sim: SimServer) -> None:
    sdk = openai_client(f"{sim.url}/sim/timeout/v1", timeout=0.3)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await sdk.chat.completions.create(model="m", messages=user())
    assert time.monotonic() - started < 2
    await sdk.close()


async def test_hang_ms_delays_then_answers(client: AsyncOpenAI) -> None:
    started = time.monotonic()
    reply = await client.chat.completions.create(
        model="m", messages=user(), extra_body={"sim": {"hang_ms": 150}}
    )
    assert time.monotonic() - started >= 0.14
    assert reply.choices[0].message.content


async def test_fail_first_then_succeed_and_reset(sim: SimServer) -> None:
    sdk = openai_client(f"{sim.url}/sim/fail_first=2,status=502/v1")
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as caught:
            await sdk.chat.completions.create(model="m", messages=user())
        assert caught.value.status_code == 502
    reply = await sdk.chat.completions.create(model="m", messages=user())
    assert reply.choices[0].finish_reason == "stop"
    async with httpx.AsyncClient(base_url=sim.url) as http:
        stats = (await http.get("/sim/stats")).json()
        assert stats["by_prefix"] == {"fail_first=2,status=502": 3}
        assert (await http.post("/sim/reset")).status_code == 200
    with pytest.raises(openai.InternalServerError):
        await sdk.chat.completions.create(model="m", messages=user())
    await sdk.close()


async def test_sdk_retries_through_fail_first(sim: SimServer) -> None:
    sdk = openai_client(f"{sim.url}/sim/fail_first=1/v1", max_retries=1)
    reply = await sdk.chat.completions.create(model="m", messages=user())
    assert reply.choices[0].message.content
    assert sim.state.stats.snapshot()["by_prefix"] == {"fail_first=1": 2}
    await sdk.close()


async def test_stats_count_every_api_request(sim: SimServer, client: AsyncOpenAI) -> None:
    await client.chat.completions.create(model="m", messages=user())
    await client.models.list()
    failing = openai_client(f"{sim.url}/sim/status=500/v1")
    with pytest.raises(openai.InternalServerError):
        await failing.chat.completions.create(model="m", messages=user())
    await failing.close()
    async with httpx.AsyncClient(base_url=sim.url) as http:
        assert (await http.get("/health")).json() == {"status": "ok"}
        stats = (await http.get("/sim/stats")).json()
    assert stats == {
        "requests": 3,
        "by_prefix": {"": 2, "status=500": 1},
        "by_endpoint": {"chat.completions": 2, "models": 1},
    }


async def test_usage_false_omits_usage(client: AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="m", messages=user(), extra_body={"sim": {"usage": False}}
    )
    assert reply.usage is None
    stream = await client.chat.completions.create(
        model="m",
        messages=user(),
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"sim": {"usage": False}},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks and all(chunk.usage is None and chunk.choices for chunk in chunks)


async def test_fault_rate_is_seeded() -> None:
    async def outcomes() -> list[bool]:
        server = await start_sim(SimConfig(fault_rate=0.5, seed=3))
        sdk = openai_client(f"{server.url}/v1")
        results = []
        for _ in range(16):
            try:
                await sdk.chat.completions.create(model="m", messages=user(), max_tokens=1)
                results.append(True)
            except openai.InternalServerError:
                results.append(False)
        await sdk.close()
        await server.close()
        return results

    first = await outcomes()
    assert first == await outcomes()
    assert 0 < first.count(False) < 16


async def test_pacing_latency_ttft_and_tokens_per_second(client: AsyncOpenAI) -> None:
    started = time.monotonic()
    stream = await client.chat.completions.create(
        model="m",
        messages=user(),
        stream=True,
        extra_body={"sim": {"latency_ms": 50, "ttft_ms": 50, "tps": 100, "output_tokens": 11}},
    )
    headers_at = time.monotonic() - started
    arrivals = [time.monotonic() - started async for _ in stream]
    assert 0.045 <= headers_at < 1.0
    assert arrivals[0] >= 0.095
    assert arrivals[-1] - arrivals[0] >= 0.095  # ten gaps of one token at 100 tokens/s


async def test_non_stream_waits_for_the_whole_generation() -> None:
    server = await start_sim(SimConfig(ttft_ms=40, tokens_per_second=200))
    sdk = openai_client(f"{server.url}/v1")
    started = time.monotonic()
    await sdk.chat.completions.create(model="m", messages=user(), max_tokens=20)
    assert time.monotonic() - started >= 0.04 + 20 / 200 - 0.005
    await sdk.close()
    await server.close()
