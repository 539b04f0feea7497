"""Which upstream goes through which egress proxy: urllib's rules (the ones aiohttp applies with
trust_env), lowercase names first, credentials kept out of reprs, only http:// proxies."""

from __future__ import annotations

import pytest

from farebox.net.egress import EgressProxies, Proxy


def proxies(monkeypatch: pytest.MonkeyPatch, **env: str) -> EgressProxies:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return EgressProxies.from_environ()


def test_each_scheme_uses_its_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    egress = proxies(monkeypatch, HTTPS_PROXY="http://tls-proxy:3128", HTTP_PROXY="plain:8080")
    assert egress.for_origin("https", "api.openai.com") == Proxy("tls-proxy", 3128)
    assert egress.for_origin("http", "10.0.0.5") == Proxy("plain", 8080)
    assert egress.active


def test_nothing_set_means_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    egress = proxies(monkeypatch)
    assert egress.for_origin("https", "api.openai.com") is None
    assert not egress.active and egress.describe() == "direct"


def test_no_proxy_matches_hosts_and_their_subdomains(monkeypatch: pytest.MonkeyPatch) -> None:
    egress = proxies(
        monkeypatch, HTTPS_PROXY="http://proxy:3128", NO_PROXY="internal.example, .corp,10.1.2.3"
    )
    assert egress.for_origin("https", "internal.example") is None
    assert egress.for_origin("https", "llm.internal.example") is None
    assert egress.for_origin("https", "vllm.corp") is None
    assert egress.for_origin("https", "10.1.2.3") is None
    assert egress.for_origin("https", "api.openai.com") == Proxy("proxy", 3128)
    assert egress.for_origin("https", "notinternal.example.com") == Proxy("proxy", 3128)


def test_no_proxy_star_means_direct_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    egress = proxies(monkeypatch, HTTPS_PROXY="http://proxy:3128", NO_PROXY="*")
    assert egress.for_origin("https", "api.openai.com") is None


def test_lowercase_names_win(monkeypatch: pytest.MonkeyPatch) -> None:
    egress = proxies(
        monkeypatch,
        HTTPS_PROXY="http://upper:1",
        https_proxy="http://lower:2",
        NO_PROXY="upper.example",
        no_proxy="lower.example",
    )
    assert egress.for_origin("https", "upper.example") == Proxy("lower", 2)
    assert egress.for_origin("https", "lower.example") is None


def test_credentials_become_a_header_and_stay_out_of_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    egress = proxies(monkeypatch, HTTPS_PROXY="http://me%40corp:p%3Ass@proxy:3128")
    proxy = egress.for_origin("https", "api.openai.com")
    assert proxy is not None
    assert proxy.authorization == "Basic bWVAY29ycDpwOnNz"  # base64("me@corp:p:ss")
    assert "p:ss" not in repr(proxy) and "bWVA" not in repr(proxy)
    assert "p%3Ass" not in egress.describe() and "proxy:3128" in egress.describe()


@pytest.mark.parametrize(
    "url", ["https://proxy:3128", "socks5://proxy:1080", "http://:3128", "http://proxy:99999"]
)
def test_unsupported_proxy_urls_are_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    with pytest.raises(ValueError):
        proxies(monkeypatch, HTTPS_PROXY=url)
