"""The operator's egress proxy, through a real tinyproxy: chat (the hot-path client) and search
(aiohttp) reach TLS upstreams through a CONNECT tunnel, trusting the upstream's CA from
SSL_CERT_FILE; plain http goes as an absolute URL; NO_PROXY hosts connect directly; lowercase
settings win and proxy credentials are sent; a URL a customer supplies never goes through it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import openai
import pytest
from aiohttp import web

from farebox.net.ssrf import FetchPolicy, fetch
from farebox.sim.config import SimConfig
from farebox.sim.server import SimServer, start_sim
from proxy_support import (
    LocalCA,
    ServedGateway,
    TinyProxy,
    make_ca,
    running_tinyproxy,
    served_gateway,
)

from support import TEST_PRICE, LoopThread, free_port

PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY")
QUESTION = [{"role": "user", "content": "what happened in rust async news this week"}]


@pytest.fixture(autouse=True)
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def ca(tmp_path: Path) -> LocalCA:
    return make_ca(tmp_path)


def _sim(ssl_context: Any) -> Iterator[SimServer]:
    loop = LoopThread()
    server = loop.run(start_sim(SimConfig(seed=1), ssl_context=ssl_context))
    try:
        yield server
    finally:
        loop.run(server.close())
        loop.stop()


@pytest.fixture
def tls_sim(ca: LocalCA) -> Iterator[SimServer]:
    yield from _sim(ca.server_context)


@pytest.fixture
def tls_search(ca: LocalCA) -> Iterator[SimServer]:
    """A second TLS simulator, for the search backend only (aiohttp's client)."""
    yield from _sim(ca.server_context)


@pytest.fixture
def plain_sim() -> Iterator[SimServer]:
    yield from _sim(None)


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[TinyProxy]:
    with running_tinyproxy(tmp_path) as running:
        yield running


def catalog(scheme: str, chat_port: int, search_port: int) -> dict[str, Any]:
    key = {"api_key_env": "SIM_KEY"}
    base = {
        "provider": "Test",
        "type": "chat",
        "context": 100_000,
        "max_output": 4096,
        "date_added": "2026-01-01",
        "price": TEST_PRICE,
        "all_output_visible": True,
    }
    return {
        "providers": {
            "sim": {"kind": "openai", "base_url": f"{scheme}://localhost:{chat_port}/v1", **key},
            "search-exa": {
                "kind": "exa",
                "base_url": f"{scheme}://localhost:{search_port}/exa",
                **key,
            },
        },
        "models": {
            "test-model": {**base, "routes": [{"provider": "sim", "model": "sim-chat"}]},
            "web-model": {
                **base,
                "unit_prices": {"web_search_result": "0.01"},
                "routes": [{"provider": "sim", "model": "sim-chat"}],
            },
        },
    }


def serve_env(ca: LocalCA | None, **proxies: str) -> dict[str, str]:
    env = {"SIM_KEY": "sim-upstream-key", **proxies}
    if ca is not None:
        env["SSL_CERT_FILE"] = str(ca.ca_file)  # the gateway trusts the test CA
    return env


def use_everything(gw: ServedGateway) -> None:
    """A chat, a streamed chat and a chat with web search: each answered, billed and settled."""
    credit_id, key = gw.create_account()
    http = httpx.Client(trust_env=False, timeout=60)
    client = openai.OpenAI(api_key=key, base_url=gw.url + "/v1", max_retries=0, http_client=http)
    reply = client.chat.completions.create(
        model="test-model", messages=QUESTION, extra_body={"sim": {"output_tokens": 7}}
    )
    assert reply.usage is not None and reply.usage.completion_tokens == 7
    chunks = list(
        client.chat.completions.create(
            model="test-model",
            messages=QUESTION,
            stream=True,
            extra_body={"sim": {"output_tokens": 9}},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    searched = client.chat.completions.create(
        model="web-model",
        messages=QUESTION,
        extra_body={"plugins": [{"id": "web", "max_results": 2}], "sim": {"output_tokens": 5}},
    )
    usage = searched.model_dump()["usage"]
    assert usage["web_search"]["results"] == 2
    http.close()
    balance = gw.balance(credit_id)
    assert balance["reserved"] == 0, balance
    assert 0 < balance["balance"] < 1
    check = gw.ledger_check()
    assert check.returncode == 0, check.stdout + check.stderr


def test_https_upstreams_are_reached_through_a_connect_tunnel(
    tmp_path: Path, ca: LocalCA, proxy: TinyProxy, tls_sim: SimServer, tls_search: SimServer
) -> None:
    env = serve_env(ca, HTTPS_PROXY=proxy.url)
    with served_gateway(tmp_path, catalog("https", tls_sim.port, tls_search.port), env) as gw:
        use_everything(gw)
    requests = proxy.requests()
    assert f"CONNECT localhost:{tls_sim.port} HTTP/1.1" in requests  # the hot-path client
    assert f"CONNECT localhost:{tls_search.port} HTTP/1.1" in requests  # aiohttp's
    assert all(r.startswith("CONNECT ") for r in requests), requests  # nothing in clear


def test_no_proxy_hosts_connect_directly(
    tmp_path: Path, ca: LocalCA, proxy: TinyProxy, tls_sim: SimServer, tls_search: SimServer
) -> None:
    env = serve_env(
        ca, HTTPS_PROXY=proxy.url, HTTP_PROXY=proxy.url, NO_PROXY="example.org,localhost"
    )
    with served_gateway(tmp_path, catalog("https", tls_sim.port, tls_search.port), env) as gw:
        use_everything(gw)
    assert proxy.requests() == []


def test_plain_http_upstreams_are_sent_to_the_proxy_as_absolute_urls(
    tmp_path: Path, proxy: TinyProxy, plain_sim: SimServer
) -> None:
    env = serve_env(None, HTTP_PROXY=proxy.url)
    with served_gateway(tmp_path, catalog("http", plain_sim.port, plain_sim.port), env) as gw:
        use_everything(gw)
    requests = proxy.requests()
    chat_line = f"POST http://localhost:{plain_sim.port}/v1/chat/completions HTTP/1.1"
    assert requests.count(chat_line) == 3  # two chats, and the one after the search
    assert f"POST http://localhost:{plain_sim.port}/exa/search HTTP/1.1" in requests


def test_lowercase_settings_win_and_proxy_credentials_are_sent(
    tmp_path: Path, ca: LocalCA, tls_sim: SimServer, tls_search: SimServer
) -> None:
    with running_tinyproxy(tmp_path, basic_auth=("farebox", "s3cret")) as proxy:
        port = proxy.url.rsplit(":", 1)[1]
        env = serve_env(
            ca,
            HTTPS_PROXY=f"http://127.0.0.1:{free_port()}",  # nothing listens there
            https_proxy=f"http://farebox:s3cret@127.0.0.1:{port}",
        )
        cat = catalog("https", tls_sim.port, tls_search.port)
        with served_gateway(tmp_path, cat, env) as gw:
            use_everything(gw)
        requests = proxy.requests()
        assert f"CONNECT localhost:{tls_sim.port} HTTP/1.1" in requests
        assert f"CONNECT localhost:{tls_search.port} HTTP/1.1" in requests
        assert "s3cret" not in gw.log.read_text()


def test_a_proxy_that_refuses_the_tunnel_fails_the_route_and_costs_nothing(
    tmp_path: Path, ca: LocalCA, tls_sim: SimServer, tls_search: SimServer
) -> None:
    with running_tinyproxy(tmp_path, basic_auth=("farebox", "s3cret")) as proxy:
        env = serve_env(ca, HTTPS_PROXY=proxy.url)  # no credentials: 407
        cat = catalog("https", tls_sim.port, tls_search.port)
        with served_gateway(tmp_path, cat, env) as gw:
            credit_id, key = gw.create_account()
            r = httpx.post(
                gw.url + "/v1/chat/completions",
                json={"model": "test-model", "messages": QUESTION},
                headers={"Authorization": f"Bearer {key}"},
                trust_env=False,
                timeout=60,
            )
            assert r.status_code == 502, r.text
            assert gw.balance(credit_id)["balance"] == 1
            assert gw.ledger_check().returncode == 0
        requests = proxy.requests()
        assert requests and set(requests) == {f"CONNECT localhost:{tls_sim.port} HTTP/1.1"}


async def test_customer_urls_never_go_through_the_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, proxy: TinyProxy
) -> None:
    image = b"\x89PNG\r\n\x1a\n" + b"x" * 100

    async def serve_image(request: web.Request) -> web.Response:
        return web.Response(body=image, content_type="image/png")

    app = web.Application()
    app.router.add_get("/cat.png", serve_image)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://localhost:{port}/cat.png"
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    try:
        fetched = await fetch(url, FetchPolicy(allow_hosts=frozenset({"localhost"})))
        assert fetched.data == image
        assert proxy.requests() == []  # straight to the address the guard vetted
        # the control: the same URL from a session that honours the environment is proxied
        async with (
            aiohttp.ClientSession(trust_env=True) as session,
            session.get(url) as response,
        ):
            assert await response.read() == image
        assert proxy.requests() == [f"GET {url} HTTP/1.1"]
    finally:
        await runner.cleanup()
