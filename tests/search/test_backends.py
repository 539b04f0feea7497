"""Each search backend against the simulator's API of its shape, over real HTTP."""

from __future__ import annotations

import pytest

from farebox.catalog.model import ProviderConfig
from farebox.search.backends import build_backend
from farebox.search.results import (
    SearchBackend,
    SearchFailed,
    SearchQuery,
    domain_allowed,
    domain_of,
)
from farebox.search.web import WebSearch
from farebox.sim.server import SimServer

SHAPES = {"exa": "/exa", "serper": "/serper", "brave": "/brave/res/v1", "searxng": "/searxng"}


def backend(kind: str, base_url: str, key: str | None = "k") -> SearchBackend:
    config = ProviderConfig(name=kind, kind=kind, base_url=base_url, api_key=key)
    built = build_backend(config)
    assert built is not None
    return built


@pytest.mark.parametrize("kind", sorted(SHAPES))
async def test_results_come_back_with_urls_titles_and_text(sim: SimServer, kind: str) -> None:
    search = backend(kind, sim.url + SHAPES[kind])
    try:
        results = await search.search(SearchQuery("rust async runtimes", 4))
    finally:
        await search.close()
    assert len(results) == 4
    assert len({r.url for r in results}) == 4
    for result in results:
        assert result.url.startswith("https://")
        assert "rust async runtimes" in result.title
        assert "rust async runtimes" in result.content
        assert result.published and result.published.startswith("2026-")


@pytest.mark.parametrize("kind", sorted(SHAPES))
async def test_domain_filters(sim: SimServer, kind: str) -> None:
    search = backend(kind, sim.url + SHAPES[kind])
    try:
        only = await search.search(
            SearchQuery("fish", 5, include_domains=("example.org", "wikipedia.org"))
        )
        without = await search.search(SearchQuery("fish", 5, exclude_domains=("en.wikipedia.org",)))
    finally:
        await search.close()
    assert {domain_of(r.url) for r in only} == {"en.wikipedia.org", "docs.example.org"}
    assert len(without) == 5 and "en.wikipedia.org" not in {domain_of(r.url) for r in without}


@pytest.mark.parametrize("kind", sorted(SHAPES))
async def test_an_upstream_error_is_search_failed(sim: SimServer, kind: str) -> None:
    search = backend(kind, f"{sim.url}/sim/status=500{SHAPES[kind]}")
    try:
        with pytest.raises(SearchFailed, match="HTTP 500"):
            await search.search(SearchQuery("x", 3))
    finally:
        await search.close()


async def test_an_unreachable_backend_is_search_failed() -> None:
    search = backend("exa", "http://127.0.0.1:9")
    try:
        with pytest.raises(SearchFailed, match="could not be reached"):
            await search.search(SearchQuery("x", 3))
    finally:
        await search.close()


def test_keyed_backends_without_a_key_are_not_built() -> None:
    for kind in ("exa", "serper", "brave"):
        assert build_backend(ProviderConfig(kind, kind, "https://x", None)) is None
    assert build_backend(ProviderConfig("s", "searxng", "http://localhost:8888", None))


def test_domain_matching() -> None:
    assert domain_allowed("https://en.wikipedia.org/x", ("wikipedia.org",), ())
    assert not domain_allowed("https://notwikipedia.org/x", ("wikipedia.org",), ())
    assert not domain_allowed("https://a.b.com/x", (), ("b.com",))
    assert domain_of("https://user@Host.Example.com:8443/p") == "host.example.com"


async def test_the_next_backend_answers_when_one_fails(sim: SimServer) -> None:
    web = WebSearch(
        [backend("exa", f"{sim.url}/sim/status=503/exa"), backend("searxng", sim.url + "/searxng")],
        default_price_nanos=1,
    )
    try:
        results, engine = await web.search(SearchQuery("fallback search", 2))
    finally:
        await web.close()
    assert engine == "searxng" and len(results) == 2


async def test_no_backend_at_all_is_a_clear_failure() -> None:
    with pytest.raises(SearchFailed, match="no search backend is configured"):
        await WebSearch([], default_price_nanos=1).search(SearchQuery("x", 1))
