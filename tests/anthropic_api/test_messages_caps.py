"""Anthropic thinking under a money-capped `max_tokens` (issue 11, item 2): when the cap an
upstream is sent is lowered to what the customer can pay for, `thinking.budget_tokens` comes
down with it (it must stay below `max_tokens`), and thinking is turned off when no budget of at
least 1024 tokens fits, rather than refused: the answer comes, within what was held."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from caps_support import assert_bounded_by_hold, caps_gateway, marker, sent_cap, upstream_body
from farebox.sim.server import SimServer

from support import Gateway, require_db


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gw(
    request: pytest.FixtureRequest, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    require_db(request.param)
    with caps_gateway(request.param, sim, tmp_path_factory.mktemp("caps")) as gateway:
        yield gateway


def think(
    gw: Gateway, key: str, mark: str, stream: bool, budget: int, max_tokens: int = 8000
) -> tuple[str, list[str], int]:
    """A Messages request with thinking on; (request id, block types, output tokens)."""
    client = anthropic.Anthropic(api_key=key, base_url=gw.url, max_retries=0)
    params: dict[str, Any] = {
        "model": "claude-reasoner",
        "max_tokens": max_tokens,
        "thinking": {"type": "enabled", "budget_tokens": budget},
        "messages": [{"role": "user", "content": f"think hard about {mark}"}],
    }
    if stream:
        with client.messages.stream(**params) as events:
            message = events.get_final_message()
            request_id = events.response.headers["x-farebox-request-id"]
    else:
        raw = client.messages.with_raw_response.create(**params)
        message, request_id = raw.parse(), raw.headers["x-farebox-request-id"]
    return request_id, [block.type for block in message.content], message.usage.output_tokens


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_thinking_that_cannot_fit_the_affordable_cap_is_turned_off(
    gw: Gateway, sim: SimServer, stream: bool
) -> None:
    _, key = gw.create_account("0.002")  # pays for about 990 output tokens
    mark = marker()
    request_id, blocks, output = think(gw, key, mark, stream, budget=4000)
    body = upstream_body(sim, mark)
    cap = sent_cap(body)
    assert cap < 1025  # no budget Anthropic accepts (>= 1024, < max_tokens) fits
    assert body["thinking"] == {"type": "disabled"}
    assert "thinking" not in blocks
    assert output <= cap
    assert_bounded_by_hold(gw, body, request_id)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_lowered_cap_lowers_the_thinking_budget(
    gw: Gateway, sim: SimServer, stream: bool
) -> None:
    _, key = gw.create_account("0.005")  # pays for about 2,490 output tokens
    mark = marker()
    request_id, blocks, output = think(gw, key, mark, stream, budget=4000)
    body = upstream_body(sim, mark)
    cap = sent_cap(body)
    assert 1025 <= cap < 4000
    assert body["thinking"] == {"type": "enabled", "budget_tokens": cap - 1}
    assert blocks[0] == "thinking"
    assert output == cap  # thought its whole budget, then one token of answer
    assert_bounded_by_hold(gw, body, request_id)


def test_a_budget_that_fits_is_sent_as_asked(gw: Gateway, sim: SimServer) -> None:
    _, key = gw.create_account(1)
    mark = marker()
    request_id, blocks, output = think(gw, key, mark, False, budget=2048, max_tokens=6000)
    body = upstream_body(sim, mark)
    assert body["max_tokens"] == 6000
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert blocks[0] == "thinking" and output == 2048 + 20
    assert_bounded_by_hold(gw, body, request_id)


def test_reasoning_effort_on_a_translated_claude_route_fits_the_cap(
    gw: Gateway, sim: SimServer
) -> None:
    _, key = gw.create_account("0.005")
    mark = marker()
    client = openai.OpenAI(api_key=key, base_url=gw.url + "/v1", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="claude-reasoner",
        reasoning_effort="high",  # a 24,576-token thinking budget
        messages=[{"role": "user", "content": f"think hard about {mark}"}],
    )
    assert raw.parse().choices[0].message.content
    body = upstream_body(sim, mark)
    cap = sent_cap(body)
    assert 1025 <= cap < 24_576
    assert body["thinking"] == {"type": "enabled", "budget_tokens": cap - 1}
    assert_bounded_by_hold(gw, body, raw.headers["x-farebox-request-id"])
