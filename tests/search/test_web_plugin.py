"""The web plugin through a live gateway: results injected and cited, each result billed in the
same charge as the tokens, history marked online; a failing search answers without results and
bills no search; bad plugin options are clear 400s that cost nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from farebox.catalog.loader import catalog_from_dict
from farebox.search.results import domain_of
from farebox.sim.anthropic_messages import ANTHROPIC_STATE
from farebox.sim.server import SimServer

from support import NANOS, TEST_PRICE, Gateway, database_url, running_gateway

QUESTION = [{"role": "user", "content": "what happened in rust async news this week"}]
WEB_MODEL_PRICE = 10_000_000  # $0.01 per result (web-model's unit price)
DEFAULT_PRICE = 4_000_000  # $0.004 per result (the gateway default)


def chat(gw: Gateway, key: str, body: dict[str, Any]) -> httpx.Response:
    with gw.client() as c:
        return c.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})


def token_cost(usage: dict[str, Any]) -> int:
    return int(usage["prompt_tokens"]) * 1_000 + int(usage["completion_tokens"]) * 2_000


def history_rows(gw: Gateway, key: str) -> list[dict[str, Any]]:
    with gw.client() as c:
        r = c.get("/queries/history", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


def settled(gw: Gateway, credit_id: str) -> int:
    balance, reserved = gw.nanos(credit_id)
    assert reserved == 0
    spent = NANOS - balance
    assert gw.history_total_nanos(credit_id) == spent
    assert gw.check().ok
    return spent


def test_results_are_cited_and_billed_per_result(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account(1)
    r = chat(
        gateway,
        key,
        {
            "model": "web-model",
            "messages": QUESTION,
            "plugins": [{"id": "web", "max_results": 3}],
            "sim": {"output_tokens": 5},
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    citations = body["choices"][0]["message"]["annotations"]
    assert [c["type"] for c in citations] == ["url_citation"] * 3
    first = citations[0]["url_citation"]
    assert first["url"].startswith("https://") and "rust async news" in first["title"]
    usage = body["usage"]
    assert usage["web_search"] == {"results": 3, "cost": 0.03, "engine": "search-exa"}
    cost = round(usage["cost"] * NANOS)
    assert cost == token_cost(usage) + 3 * WEB_MODEL_PRICE
    assert r.headers["x-farebox-cost"] == str(cost / NANOS).rstrip("0")
    assert settled(gateway, credit_id) == cost
    (row,) = history_rows(gateway, key)
    assert row["isOnline"] is True


def test_the_results_reach_the_model_before_the_last_user_message(gateway: Gateway) -> None:
    _, key = gateway.create_account(1)
    plain = chat(gateway, key, {"model": "test-model", "messages": QUESTION}).json()
    online = chat(gateway, key, {"model": "test-model:online", "messages": QUESTION}).json()
    # the simulator counts what it was sent: five injected results make the prompt much longer
    assert online["usage"]["prompt_tokens"] > plain["usage"]["prompt_tokens"] + 5 * 20
    assert online["usage"]["web_search"]["results"] == 5  # :online uses the default of 5
    assert online["model"] == "test-model"  # the catalog id, never the upstream's
    cost = round(online["usage"]["cost"] * NANOS)
    assert cost == token_cost(online["usage"]) + 5 * DEFAULT_PRICE


@pytest.mark.parametrize("max_tokens", [None, 50])  # 50: held in full, relayed unparsed
def test_streaming_carries_annotations_and_the_search_cost(
    gateway: Gateway, max_tokens: int | None
) -> None:
    credit_id, key = gateway.create_account(1)
    stream = openai.OpenAI(api_key=key, base_url=gateway.url + "/v1", max_retries=0)
    chunks = list(
        stream.chat.completions.create(
            model="web-model",
            messages=QUESTION,  # type: ignore[arg-type]
            stream=True,
            extra_body={"plugins": [{"id": "web", "max_results": 2}], "max_tokens": max_tokens},
        )
    )
    annotated = [
        c for c in chunks if c.choices and (c.choices[0].delta.model_extra or {}).get("annotations")
    ]
    assert len(annotated) == 1
    cited = annotated[0].choices[0].delta.model_extra["annotations"]  # type: ignore[index]
    assert len(cited) == 2 and cited[0]["type"] == "url_citation"
    usage = chunks[-1].usage
    assert usage is not None
    extra = usage.model_extra or {}
    assert extra["web_search"]["results"] == 2
    cost = round(extra["cost"] * NANOS)
    assert (
        cost == usage.prompt_tokens * 1_000 + usage.completion_tokens * 2_000 + 2 * WEB_MODEL_PRICE
    )
    assert settled(gateway, credit_id) == cost


def test_domain_filters_and_search_prompt(gateway: Gateway) -> None:
    _, key = gateway.create_account(1)
    r = chat(
        gateway,
        key,
        {
            "model": "web-model",
            "messages": QUESTION,
            "plugins": [
                {
                    "id": "web",
                    "max_results": 5,
                    "include_domains": ["example.org", "example.net"],
                    "exclude_domains": ["blog.example.net"],
                    "search_prompt": "Results follow; cite them.",
                }
            ],
        },
    )
    assert r.status_code == 200, r.text
    urls = [c["url_citation"]["url"] for c in r.json()["choices"][0]["message"]["annotations"]]
    assert [domain_of(u) for u in urls] == ["docs.example.org"]
    assert r.json()["usage"]["web_search"]["results"] == 1


def test_web_plugin_on_the_messages_front_reaches_a_native_upstream(
    gateway: Gateway, sim: SimServer
) -> None:
    credit_id, key = gateway.create_account(1)
    sdk = anthropic.Anthropic(api_key=key, base_url=gateway.url, max_retries=0)
    message = sdk.messages.create(
        model="claude-test",
        max_tokens=50,
        messages=[{"role": "user", "content": f"web question {credit_id}"}],
        extra_body={"plugins": [{"id": "web", "max_results": 2}]},
    )
    usage = message.usage.model_extra or {}
    assert usage["web_search"]["results"] == 2
    for _, body in reversed(sim.app[ANTHROPIC_STATE].recent):
        if credit_id in str(body):
            blocks = body["messages"][-1]["content"]
            break
    else:
        raise AssertionError("the upstream never got the request")
    assert blocks[0]["type"] == "text" and "A web search was conducted on" in blocks[0]["text"]
    assert "Cite them using markdown links" in blocks[0]["text"]
    assert blocks[-1]["text"] == f"web question {credit_id}"
    assert "plugins" not in body
    assert settled(gateway, credit_id) == round(usage["cost"] * NANOS)


def test_online_suffix_on_the_messages_front(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account(1)
    sdk = anthropic.Anthropic(api_key=key, base_url=gateway.url, max_retries=0)
    message = sdk.messages.create(
        model="test-model:online",
        max_tokens=20,
        messages=QUESTION,  # type: ignore[arg-type]
    )
    assert message.model == "test-model"  # the catalog id asked for
    usage = message.usage.model_extra or {}
    assert usage["web_search"]["results"] == 5
    cost = round(usage["cost"] * NANOS)
    tokens = message.usage.input_tokens * 1_000 + message.usage.output_tokens * 2_000
    assert cost == tokens + 5 * DEFAULT_PRICE
    assert settled(gateway, credit_id) == cost
    (row,) = history_rows(gateway, key)
    assert row["isOnline"] is True


BAD_PLUGINS: list[tuple[str, object]] = [
    ("max_results zero", [{"id": "web", "max_results": 0}]),
    ("max_results too many", [{"id": "web", "max_results": 500}]),
    ("max_results string", [{"id": "web", "max_results": "5"}]),
    ("domains not a list", [{"id": "web", "include_domains": "example.org"}]),
    ("unknown option", [{"id": "web", "max_result": 3}]),
    ("empty search_prompt", [{"id": "web", "search_prompt": " "}]),
    ("plugins not a list", {"id": "web"}),
    ("plugin without id", [{"max_results": 3}]),
]


@pytest.mark.parametrize(("name", "plugins"), BAD_PLUGINS, ids=[b[0] for b in BAD_PLUGINS])
def test_bad_plugin_options_are_400_and_free(gateway: Gateway, name: str, plugins: object) -> None:
    credit_id, key = gateway.create_account(1)
    r = chat(gateway, key, {"model": "web-model", "messages": QUESTION, "plugins": plugins})
    assert r.status_code == 400, r.text
    assert "plugin" in r.json()["error"]["message"]
    assert gateway.nanos(credit_id) == (NANOS, 0)
    assert history_rows(gateway, key) == []


@pytest.fixture(scope="module")
def failing_search(sim: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway whose one search backend answers 500."""
    base = {
        "provider": "Test",
        "type": "chat",
        "context": 100_000,
        "max_output": 4096,
        "date_added": "2026-01-01",
        "price": TEST_PRICE,
        "routes": [{"provider": "sim", "model": "sim-chat"}],
    }
    catalog = catalog_from_dict(
        {
            "providers": {
                "sim": {"kind": "openai", "base_url": f"{sim.url}/v1", "api_key_env": "K"},
                "broken-exa": {
                    "kind": "exa",
                    "base_url": f"{sim.url}/sim/status=500/exa",
                    "api_key_env": "K",
                },
            },
            "models": {"m": base},
        },
        env={"K": "k"},
    )
    with (
        database_url("sqlite", tmp_path_factory.mktemp("search")) as url,
        running_gateway(url, catalog) as gw,
    ):
        yield gw


@pytest.mark.parametrize("stream", [False, True])
def test_a_failing_search_answers_without_results_and_bills_no_search(
    failing_search: Gateway, stream: bool
) -> None:
    gw = failing_search
    credit_id, key = gw.create_account(1)
    r = chat(
        gw,
        key,
        {"model": "m", "messages": QUESTION, "stream": stream, "plugins": [{"id": "web"}]},
    )
    assert r.status_code == 200, r.text
    if stream:
        events = [orjson.loads(b[6:]) for b in r.text.split("\n\n") if b.startswith("data: {")]
        assert not any(e["choices"] and "annotations" in e["choices"][0]["delta"] for e in events)
        usage = events[-1]["usage"]
    else:
        message = r.json()["choices"][0]["message"]
        assert message["content"] and "annotations" not in message
        usage = r.json()["usage"]
    search = usage["web_search"]
    assert search["results"] == 0 and search["cost"] == 0
    assert "web search failed" in search["error"] and "HTTP 500" in search["error"]
    cost = round(usage["cost"] * NANOS)
    assert cost == token_cost(usage)  # tokens only
    assert settled(gw, credit_id) == cost
    assert history_rows(gw, key)[0]["isOnline"] is True
