"""The web plugin's engine follows the model (PPQ, after OpenRouter): a model whose provider
searches itself (catalog `web_search`) is sent the provider's search (Anthropic's `web_search`
tool bounded by `max_uses`, OpenAI's `web_search_options`) instead of injected results, held for
before the call and billed per search the upstream reports; `engine` overrides both ways, and
asking for a native search a model lacks is a free 400. Every surface and route kind, streamed
or not: the upstream's cap stays within the hold, and history equals spend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from caps_support import assert_bounded_by_hold, marker, sent_cap, upstream_body
from farebox.catalog.errors import CatalogError
from farebox.catalog.loader import catalog_from_dict
from farebox.catalog.model import Catalog
from farebox.sim.server import SimServer

from support import NANOS, TEST_PRICE, Gateway, database_url, require_db, running_gateway

CLAUDE_SEARCH = 10_000_000  # $0.01 per search (Anthropic's list price, as in claude-web)
GPT_SEARCH = 30_000_000  # $0.03 per search (search-gpt)
SEARCH_TOKENS = 10_000  # input tokens held per Anthropic search (search/native.py)
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}


def native_catalog(sim_url: str) -> Catalog:
    key = {"api_key_env": "K"}
    base = {
        "provider": "Test",
        "type": "chat",
        "context": 100_000,
        "max_output": 4096,
        "date_added": "2026-01-01",
        "price": TEST_PRICE,
    }
    return catalog_from_dict(
        {
            "providers": {
                "plain": {"kind": "openai", "base_url": f"{sim_url}/v1", **key},
                "openai-search": {
                    "kind": "openai",
                    "base_url": f"{sim_url}/v1",
                    "web_search": "openai",
                    **key,
                },
                "claude": {
                    "kind": "anthropic",
                    "base_url": f"{sim_url}/v1",
                    "web_search": "anthropic",
                    **key,
                },
                "pplx": {
                    "kind": "openai",
                    "base_url": f"{sim_url}/v1",
                    "web_search": "perplexity",
                    **key,
                },
                "claude-nokey": {  # its key's env var is not set: not configured
                    "kind": "anthropic",
                    "base_url": f"{sim_url}/v1",
                    "web_search": "anthropic",
                    "api_key_env": "UNSET_KEY",
                },
                "search-exa": {"kind": "exa", "base_url": f"{sim_url}/exa", **key},
            },
            "models": {
                # a fallback route without native search comes first: native calls skip it
                "claude-web": {
                    **base,
                    "web_search": "anthropic",
                    "unit_prices": {"web_search": "0.01", "web_search_result": "0.002"},
                    "routes": [
                        {"provider": "plain", "model": "sim-plain"},
                        {"provider": "claude", "model": "claude-sim"},
                    ],
                },
                "search-gpt": {
                    **base,
                    "web_search": "openai",
                    "unit_prices": {"web_search": "0.03"},
                    "routes": [
                        {"provider": "plain", "model": "sim-plain"},
                        {"provider": "openai-search", "model": "sim-search-preview"},
                    ],
                },
                "plain-model": {**base, "routes": [{"provider": "plain", "model": "sim-plain"}]},
                "sonar-test": {
                    **base,
                    "web_search": "perplexity",
                    "unit_prices": {"web_search": "0.006", "web_search:high": "0.0144"},
                    "routes": [{"provider": "pplx", "model": "sonar"}],
                },
                "claude-unkeyed": {
                    **base,
                    "web_search": "anthropic",
                    "unit_prices": {"web_search": "0.01"},
                    "routes": [
                        {"provider": "claude-nokey", "model": "claude-sim"},
                        {"provider": "plain", "model": "sim-plain"},
                    ],
                },
            },
        },
        env={"K": "k"},
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gw(
    request: pytest.FixtureRequest, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    require_db(request.param)
    with (
        database_url(request.param, tmp_path_factory.mktemp("native")) as url,
        running_gateway(url, native_catalog(sim.url)) as gateway,
    ):
        yield gateway


def token_cost(usage: dict[str, Any]) -> int:
    return int(usage["prompt_tokens"]) * 1_000 + int(usage["completion_tokens"]) * 2_000


def settled(gw: Gateway, credit_id: str) -> int:
    """What the account spent: nothing left held, history equals spend, the ledger checks."""
    balance, reserved = gw.nanos(credit_id)
    assert reserved == 0
    spent = NANOS - balance
    assert gw.history_total_nanos(credit_id) == spent
    report = gw.check()
    assert report.ok, report.problems
    return spent


def chat(gw: Gateway, key: str, body: dict[str, Any]) -> httpx.Response:
    with gw.client() as c:
        return c.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})


def messages(gw: Gateway, key: str, body: dict[str, Any]) -> httpx.Response:
    with gw.client() as c:
        return c.post("/v1/messages", json=body, headers={"x-api-key": key, **ANTHROPIC_HEADERS})


def sse(r: httpx.Response) -> list[dict[str, Any]]:
    events = []
    for block in r.text.split("\n\n"):
        data = next((line[6:] for line in block.split("\n") if line.startswith("data: ")), None)
        if data is not None and data != "[DONE]":
            events.append(orjson.loads(data))
    return events


def question(mark: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"what is new about {mark} this week"}]


def web(**options: Any) -> list[dict[str, Any]]:
    return [{"id": "web", **options}]


# --- the engine follows the model ------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_an_anthropic_model_searches_with_the_web_search_tool(
    gw: Gateway, sim: SimServer, stream: bool
) -> None:
    credit_id, key = gw.create_account(1)
    mark = marker()
    body = {"model": "claude-web", "messages": question(mark), "plugins": web(max_results=3)}
    r = chat(gw, key, {**body, "stream": stream, "max_tokens": 200})
    assert r.status_code == 200, r.text
    sent = upstream_body(sim, mark)
    assert sent["model"] == "claude-sim"  # the native route, not the plain fallback listed first
    (tool,) = sent["tools"]
    assert tool == {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
    assert "system" not in sent  # nothing injected: the provider searches
    if stream:
        events = sse(r)
        cited = [
            a
            for e in events
            for c in e.get("choices") or ()
            for a in c["delta"].get("annotations") or ()
        ]
        usage = events[-1]["usage"]
    else:
        cited = r.json()["choices"][0]["message"]["annotations"]
        usage = r.json()["usage"]
    assert [c["type"] for c in cited] == ["url_citation"]
    assert cited[0]["url_citation"]["url"].startswith("https://")
    assert usage["web_search"] == {"requests": 1, "results": 1, "cost": 0.01, "engine": "native"}
    cost = round(usage["cost"] * NANOS)
    assert cost == token_cost(usage) + CLAUDE_SEARCH
    assert settled(gw, credit_id) == cost
    assert_bounded_by_hold(gw, sent, r.headers["x-farebox-request-id"], extra=CLAUDE_SEARCH)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_an_openai_search_model_is_billed_one_search_per_request_plugin_or_not(
    gw: Gateway, sim: SimServer, stream: bool
) -> None:
    credit_id, key = gw.create_account(1)
    mark = marker()
    r = chat(
        gw,
        key,
        {"model": "search-gpt", "messages": question(mark), "stream": stream, "max_tokens": 100},
    )
    assert r.status_code == 200, r.text
    sent = upstream_body(sim, mark)
    assert sent["model"] == "sim-search-preview"
    assert sent["web_search_options"] == {"search_context_size": "medium"}  # OpenAI's default
    if stream:
        events = sse(r)
        cited = [
            a
            for e in events
            for c in e.get("choices") or ()
            for a in c["delta"].get("annotations") or ()
        ]
        usage = events[-1]["usage"]
    else:
        cited = r.json()["choices"][0]["message"]["annotations"]
        usage = r.json()["usage"]
    assert len(cited) == 3  # the upstream's own annotations, passed through
    with gw.client() as c:
        (row,) = c.get("/queries/history", headers={"Authorization": f"Bearer {key}"}).json()[
            "data"
        ]
    assert row["isOnline"] is True  # it searched, though no plugin asked
    assert usage["web_search"] == {"requests": 1, "results": 3, "cost": 0.03, "engine": "native"}
    cost = round(usage["cost"] * NANOS)
    assert cost == token_cost(usage) + GPT_SEARCH
    assert settled(gw, credit_id) == cost
    assert_bounded_by_hold(gw, sent, r.headers["x-farebox-request-id"], extra=GPT_SEARCH)


def test_the_model_list_says_which_models_search_natively_and_the_price(gw: Gateway) -> None:
    with gw.client() as c:
        claude = c.get("/v1/models/claude-web").json()
        plain = c.get("/v1/models/plain-model").json()
    assert claude["web_search"] == "anthropic"
    assert claude["unit_pricing_usd"]["web_search"] == 0.01
    assert "web_search" not in plain


def test_a_model_without_native_search_uses_the_search_backends(
    gw: Gateway, sim: SimServer
) -> None:
    _, key = gw.create_account(1)
    mark = marker()
    r = chat(gw, key, {"model": "plain-model", "messages": question(mark), "plugins": web()})
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["web_search"]["engine"] == "search-exa"
    assert "web_search_options" not in upstream_body(sim, mark)
    # the search backend and the model were both sent this request's id
    rid = r.headers["x-request-id"]
    kept = zip(sim.state.received, sim.state.request_ids, strict=True)
    assert [name for (name, _), i in kept if i == rid] == ["search", "chat.completions"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("size", "price"), [(None, 6_000_000), ("high", 14_400_000)])
def test_a_perplexity_model_is_billed_its_request_fee_and_its_sources_become_annotations(
    gw: Gateway, sim: SimServer, stream: bool, size: str | None, price: int
) -> None:
    credit_id, key = gw.create_account(1)
    mark = marker()
    body: dict[str, Any] = {"model": "sonar-test", "messages": question(mark), "stream": stream}
    if size:
        body["web_search_options"] = {"search_context_size": size}
    r = chat(gw, key, body)
    assert r.status_code == 200, r.text
    sent = upstream_body(sim, mark)["web_search_options"]
    assert sent == {"search_context_size": size or "low"}  # the size priced, always sent
    if stream:
        events = sse(r)
        cited = [
            a
            for e in events
            for c in e.get("choices") or ()
            for a in c["delta"].get("annotations") or ()
        ]
        usage = events[-1]["usage"]
    else:
        cited = r.json()["choices"][0]["message"]["annotations"]
        usage = r.json()["usage"]
    assert [c["url_citation"]["url"][:8] for c in cited] == ["https://"] * 3
    assert usage["web_search"]["requests"] == 1 and usage["web_search"]["results"] == 3
    cost = round(usage["cost"] * NANOS)
    assert cost == token_cost(usage) + price
    assert settled(gw, credit_id) == cost


def test_an_unknown_search_context_size_is_a_free_400(gw: Gateway) -> None:
    credit_id, key = gw.create_account(1)
    body = {
        "model": "sonar-test",
        "messages": question("x"),
        "web_search_options": {"search_context_size": "huge"},
    }
    r = chat(gw, key, body)
    assert r.status_code == 400 and "search_context_size" in r.json()["error"]["message"]
    assert gw.nanos(credit_id) == (NANOS, 0)


def test_without_a_configured_native_provider_the_backends_search(
    gw: Gateway, sim: SimServer
) -> None:
    _, key = gw.create_account(1)
    mark = marker()
    r = chat(gw, key, {"model": "claude-unkeyed", "messages": question(mark), "plugins": web()})
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["web_search"]["engine"] == "search-exa"
    assert upstream_body(sim, mark)["model"] == "sim-plain"
    body = {"model": "claude-unkeyed", "messages": question("x"), "plugins": web(engine="native")}
    r = chat(gw, key, body)
    assert r.status_code == 400 and "is configured" in r.json()["error"]["message"]


# --- engine overrides ------------------------------------------------------------------------


def test_engine_exa_on_a_native_model_injects_backend_results(gw: Gateway, sim: SimServer) -> None:
    credit_id, key = gw.create_account(1)
    mark = marker()
    r = chat(
        gw,
        key,
        {"model": "claude-web", "messages": question(mark), "plugins": web(engine="exa")},
    )
    assert r.status_code == 200, r.text
    usage = r.json()["usage"]
    assert usage["web_search"]["engine"] == "search-exa" and usage["web_search"]["results"] == 5
    sent = upstream_body(sim, mark)
    assert "tools" not in sent and "web_search_options" not in sent
    assert round(usage["cost"] * NANOS) == token_cost(usage) + 5 * 2_000_000  # per result
    settled(gw, credit_id)


@pytest.mark.parametrize(
    ("model", "plugin", "says"),
    [
        ("plain-model", {"engine": "native"}, "has no native web search"),
        ("search-gpt", {"engine": "exa"}, "on every request"),
        ("claude-web", {"engine": "google"}, "engine must be one of"),
        ("search-gpt", {"include_domains": ["example.org"]}, "no domain filters"),
    ],
    ids=["native-without-native", "exa-on-always-searching", "unknown-engine", "openai-domains"],
)
def test_an_engine_the_model_cannot_use_is_a_free_400(
    gw: Gateway, model: str, plugin: dict[str, Any], says: str
) -> None:
    credit_id, key = gw.create_account(1)
    body = {"model": model, "messages": question("x"), "plugins": web(**plugin)}
    r = chat(gw, key, body)
    assert r.status_code == 400, r.text
    assert says in r.json()["error"]["message"]
    assert gw.nanos(credit_id) == (NANOS, 0)


def test_web_search_options_on_a_model_without_native_search_is_a_free_400(gw: Gateway) -> None:
    credit_id, key = gw.create_account(1)
    r = chat(
        gw,
        key,
        {"model": "plain-model", "messages": question("x"), "web_search_options": {}},
    )
    assert r.status_code == 400, r.text
    assert "no native web search" in r.json()["error"]["message"]
    assert gw.nanos(credit_id) == (NANOS, 0)


# --- billing what the upstream did -----------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_no_search_is_billed_when_the_model_does_not_search(
    gw: Gateway, sim: SimServer, stream: bool
) -> None:
    credit_id, key = gw.create_account(1)
    mark = marker()
    body = {
        "model": "claude-web",
        "messages": question(mark),
        "plugins": web(),
        "stream": stream,
        "sim": {"web_searches": 0},
    }
    r = chat(gw, key, body)
    assert r.status_code == 200, r.text
    usage = sse(r)[-1]["usage"] if stream else r.json()["usage"]
    assert usage["web_search"] == {"requests": 0, "results": 0, "cost": 0, "engine": "native"}
    assert settled(gw, credit_id) == round(usage["cost"] * NANOS) == token_cost(usage)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_searches_are_bounded_by_max_uses_and_billed_as_reported(
    gw: Gateway, sim: SimServer, stream: bool
) -> None:
    credit_id, key = gw.create_account(1)
    mark = marker()
    body = {
        "model": "claude-web",
        "messages": question(mark),
        "plugins": web(max_results=2),
        "stream": stream,
        "sim": {"web_searches": 4},  # the model wants four: the tool allows two
    }
    r = chat(gw, key, body)
    assert r.status_code == 200, r.text
    assert upstream_body(sim, mark)["tools"][0]["max_uses"] == 2
    usage = sse(r)[-1]["usage"] if stream else r.json()["usage"]
    assert usage["web_search"]["requests"] == 2
    cost = round(usage["cost"] * NANOS)
    assert cost == token_cost(usage) + 2 * CLAUDE_SEARCH
    assert settled(gw, credit_id) == cost


def test_a_stream_cut_after_its_searches_bills_the_searches_seen(gw: Gateway) -> None:
    credit_id, key = gw.create_account(1)
    body = {
        "model": "claude-web",
        "messages": question(marker()),
        "plugins": web(max_results=3),
        "stream": True,
        "sim": {"error_after": 60, "output_tokens": 200},  # cut in the middle of the text
    }
    r = chat(gw, key, body)
    assert r.status_code == 200, r.text
    events = sse(r)
    assert "error" in events[-1]
    usage = events[-2]["usage"]
    assert usage["web_search"]["requests"] == 1  # the one search that ran, not the three held
    assert round(usage["cost"] * NANOS) == token_cost(usage) + CLAUDE_SEARCH
    settled(gw, credit_id)


def test_a_stream_cut_before_usage_bills_the_searches_held(gw: Gateway) -> None:
    """The upstream broke off before reporting its searches: they may have run (Anthropic bills
    the operator for them), so the held most is billed, never more."""
    credit_id, key = gw.create_account(1)
    body = {
        "model": "claude-web",
        "messages": question(marker()),
        "plugins": web(max_results=2),
        "stream": True,
        "sim": {"error_after": 4},  # inside the search call, before its results
    }
    r = chat(gw, key, body)
    assert r.status_code == 200, r.text
    usage = sse(r)[-2]["usage"]  # then the upstream's error event
    assert usage["web_search"]["requests"] == 2
    assert round(usage["cost"] * NANOS) == token_cost(usage) + 2 * CLAUDE_SEARCH
    settled(gw, credit_id)


def test_the_hold_covers_every_search_and_its_pages_before_the_call(gw: Gateway) -> None:
    """An account that cannot pay for the most searches (and the pages they read) is refused
    with a 402 before anything reaches the upstream."""
    worst = 5 * (CLAUDE_SEARCH + SEARCH_TOKENS * 1_000)
    credit_id, key = gw.create_account(f"{(worst - 1) / NANOS:.9f}")
    r = chat(gw, key, {"model": "claude-web", "messages": question("x"), "plugins": web()})
    assert r.status_code == 402, r.text
    assert gw.nanos(credit_id)[1] == 0


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_the_cap_sent_upstream_is_lowered_to_what_is_left_after_the_search_hold(
    gw: Gateway, sim: SimServer, stream: bool
) -> None:
    """$0.0205 pays for one search and its pages ($0.02) and about 250 output tokens: the cap
    sent to Anthropic is lowered to that, never the 4,000 asked."""
    credit_id, key = gw.create_account("0.0205")
    mark = marker()
    body = {
        "model": "claude-web",
        "messages": question(mark),
        "plugins": web(max_results=1),
        "max_tokens": 4000,
        "stream": stream,
    }
    r = chat(gw, key, body)
    assert r.status_code == 200, r.text
    sent = upstream_body(sim, mark)
    assert sent["tools"][0]["max_uses"] == 1
    assert sent_cap(sent) < 250
    assert_bounded_by_hold(gw, sent, r.headers["x-farebox-request-id"], extra=CLAUDE_SEARCH)
    balance, reserved = gw.nanos(credit_id)
    assert reserved == 0 and balance >= 0


# --- the Anthropic surface -------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_messages_front_plugin_reaches_anthropic_as_the_tool(
    gw: Gateway, sim: SimServer, stream: bool
) -> None:
    credit_id, key = gw.create_account(1)
    mark = marker()
    sdk = anthropic.Anthropic(api_key=key, base_url=gw.url, max_retries=0)
    kwargs: dict[str, Any] = {
        "model": "claude-web",
        "max_tokens": 200,
        "messages": question(mark),
        "extra_body": {"plugins": web(max_results=2)},
    }
    if stream:
        with sdk.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    else:
        message = sdk.messages.create(**kwargs)
    sent = upstream_body(sim, mark)
    assert sent["tools"] == [{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}]
    assert "plugins" not in sent
    usage = message.usage
    assert usage.server_tool_use is not None and usage.server_tool_use.web_search_requests == 1
    cost = usage.input_tokens * 1_000 + usage.output_tokens * 2_000 + CLAUDE_SEARCH
    if not stream:  # (the SDK's stream accumulator keeps no extra usage fields)
        extra = usage.model_extra or {}
        assert extra["web_search"]["engine"] == "native" and extra["web_search"]["requests"] == 1
        assert round(extra["cost"] * NANOS) == cost
    cited = [c for b in message.content if b.type == "text" for c in b.citations or ()]
    assert [c.type for c in cited] == ["web_search_result_location"]
    assert cited[0].url.startswith("https://")
    assert settled(gw, credit_id) == cost


def test_the_customers_own_web_search_tool_is_bounded_and_billed(
    gw: Gateway, sim: SimServer
) -> None:
    credit_id, key = gw.create_account(1)
    mark = marker()
    tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 50}
    body = {
        "model": "claude-web",
        "max_tokens": 200,
        "messages": question(mark),
        "tools": [tool],
        "sim": {"web_searches": 3},
    }
    r = messages(gw, key, body)
    assert r.status_code == 200, r.text
    assert upstream_body(sim, mark)["tools"] == [{**tool, "max_uses": 20}]  # at most 20 held
    usage = r.json()["usage"]
    assert usage["server_tool_use"] == {"web_search_requests": 3}
    assert usage["web_search"]["cost"] == 0.03
    assert settled(gw, credit_id) == round(usage["cost"] * NANOS)


def test_a_web_search_tool_on_a_model_without_native_search_is_a_free_400(gw: Gateway) -> None:
    """Sent on, an upstream would search unbilled."""
    credit_id, key = gw.create_account(1)
    body = {
        "model": "plain-model",
        "max_tokens": 50,
        "messages": question("x"),
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }
    r = messages(gw, key, body)
    assert r.status_code == 400, r.text
    assert "no native web search" in r.text
    assert gw.nanos(credit_id) == (NANOS, 0)


def test_messages_front_on_an_openai_search_model(gw: Gateway, sim: SimServer) -> None:
    credit_id, key = gw.create_account(1)
    mark = marker()
    r = messages(gw, key, {"model": "search-gpt", "max_tokens": 100, "messages": question(mark)})
    assert r.status_code == 200, r.text
    assert upstream_body(sim, mark)["web_search_options"] == {"search_context_size": "medium"}
    message = r.json()
    assert message["usage"]["server_tool_use"] == {"web_search_requests": 1}
    (text,) = [b for b in message["content"] if b["type"] == "text"]
    assert len(text["citations"]) == 3
    assert settled(gw, credit_id) == round(message["usage"]["cost"] * NANOS)


def test_the_openai_sdk_reads_native_annotations(gw: Gateway) -> None:
    _, key = gw.create_account(1)
    client = openai.OpenAI(api_key=key, base_url=gw.url + "/v1", max_retries=0)
    reply = client.chat.completions.create(
        model="claude-web",
        messages=question(marker()),  # type: ignore[arg-type]
        extra_body={"plugins": web(max_results=1)},
    )
    (annotation,) = reply.choices[0].message.annotations or []
    assert annotation.type == "url_citation" and annotation.url_citation.url.startswith("https")


# --- the catalog -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"web_search": "bing"}, "unknown native search"),
        ({"unit_prices": {}}, "needs unit_prices.web_search"),
        ({"routes": [{"provider": "plain", "model": "m"}]}, "no route goes to a provider"),
    ],
    ids=["unknown", "unpriced", "no-native-route"],
)
def test_the_catalog_refuses_a_native_search_it_cannot_serve(
    change: dict[str, Any], says: str
) -> None:
    entry = {
        "provider": "Test",
        "type": "chat",
        "context": 1000,
        "max_output": 100,
        "date_added": "2026-01-01",
        "price": TEST_PRICE,
        "web_search": "anthropic",
        "unit_prices": {"web_search": "0.01"},
        "routes": [{"provider": "claude", "model": "m"}],
        **change,
    }
    providers = {
        "plain": {"kind": "openai", "base_url": "http://x/v1"},
        "claude": {"kind": "anthropic", "base_url": "http://x/v1", "web_search": "anthropic"},
    }
    with pytest.raises(CatalogError, match=says):
        catalog_from_dict({"providers": providers, "models": {"m": entry}}, env={})


def test_a_provider_offers_only_the_search_of_its_wire_kind() -> None:
    providers = {"p": {"kind": "openai", "base_url": "http://x/v1", "web_search": "anthropic"}}
    with pytest.raises(CatalogError, match="needs a provider of kind 'anthropic'"):
        catalog_from_dict({"providers": providers, "models": {}}, env={})
