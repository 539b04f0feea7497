"""The official openai SDK against a live gateway: the balance moves by exactly the reported cost."""

from __future__ import annotations

import openai
import pytest

from support import NANOS, Gateway


def sdk(gw: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=gw.url + "/v1", max_retries=0)


def test_chat_non_stream_charges_reported_cost(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account(1)
    before, _ = gateway.nanos(credit_id)
    raw = sdk(gateway, key).chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": "Say hello to the ledger"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    usage = completion.usage
    assert usage is not None
    cost_usd = usage.model_extra["cost"]  # type: ignore[index]
    # $1/M input, $2/M output
    expected = -(-(usage.prompt_tokens * 1_000 + usage.completion_tokens * 2_000) // 1)
    assert round(cost_usd * NANOS) == expected
    assert raw.headers["x-farebox-cost"] == f"{expected / NANOS:.9f}".rstrip("0")
    after, reserved = gateway.nanos(credit_id)
    assert before - after == expected
    assert reserved == 0
    assert gateway.history_total_nanos(credit_id) == expected
    assert gateway.check().ok


def test_chat_stream_charges_reported_cost(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account(1)
    before, _ = gateway.nanos(credit_id)
    stream = sdk(gateway, key).chat.completions.create(
        model="test-model",
        messages=[{"role": "user", "content": "Stream a few words please"}],
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=12,
    )
    text = ""
    usage = None
    finish = None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert text
    assert finish == "length"
    assert usage is not None and usage.completion_tokens == 12
    cost = round(usage.model_extra["cost"] * NANOS)  # type: ignore[index]
    assert cost == usage.prompt_tokens * 1_000 + 12 * 2_000
    after, reserved = gateway.nanos(credit_id)
    assert before - after == cost
    assert reserved == 0
    assert gateway.history_total_nanos(credit_id) == cost
    assert gateway.check().ok


def test_bad_key_is_401_and_charges_nothing(gateway: Gateway) -> None:
    credit_id, _key = gateway.create_account(1)
    before = gateway.nanos(credit_id)
    with pytest.raises(openai.AuthenticationError):
        sdk(gateway, "sk-not-a-real-key").chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert gateway.nanos(credit_id) == before


@pytest.mark.parametrize(
    ("asked", "catalog_id"),
    [
        ("test-model", "test-model"),  # routed to the simulator's "sim-chat"
        ("claude-sonnet-5-5", "claude-test"),  # an alias, routed natively to "claude-sim"
    ],
)
@pytest.mark.parametrize("max_tokens", [None, 40])  # 40: held in full, chunks relayed unparsed
def test_replies_name_the_catalog_model_not_the_upstreams(
    gateway: Gateway, asked: str, catalog_id: str, max_tokens: int | None
) -> None:
    """As OpenRouter does: `model` in a reply and in every chunk is the catalog's id for the
    model asked for, never the id the upstream route knows it by."""
    _, key = gateway.create_account(1)
    client = sdk(gateway, key)
    hello = [{"role": "user", "content": "Say hello in a few words"}]
    extra = {} if max_tokens is None else {"max_tokens": max_tokens}
    reply = client.chat.completions.create(model=asked, messages=hello, **extra)  # type: ignore[arg-type]
    assert reply.model == catalog_id
    chunks = list(client.chat.completions.create(model=asked, messages=hello, stream=True, **extra))  # type: ignore[call-overload]
    assert len(chunks) > 2
    assert {chunk.model for chunk in chunks} == {catalog_id}
    assert gateway.check().ok
