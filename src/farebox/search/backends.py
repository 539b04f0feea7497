"""Search backends: Exa, Serper (Google), Brave and a self-hosted SearXNG, each behind the port.

Each is configured as a catalog provider of its kind (base_url, api_key_env, timeouts):
- exa: `POST {base}/search` with `x-api-key` (https://api.exa.ai); domain filters native.
- serper: `POST {base}/search` with `X-API-KEY` (https://google.serper.dev); domains as
  `site:` / `-site:` terms.
- brave: `GET {base}/web/search` with `X-Subscription-Token`
  (https://api.search.brave.com/res/v1); domains as query terms.
- searxng: `GET {base}/search?format=json` (no key; the instance must allow the json format).
Domain filters are also applied to what comes back, whatever the backend did with them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from farebox.catalog.model import ProviderConfig
from farebox.observe.context import request_id_header
from farebox.search.results import (
    SearchBackend,
    SearchFailed,
    SearchQuery,
    SearchResult,
    domain_allowed,
)

SEARCH_KINDS = frozenset({"exa", "serper", "brave", "searxng"})
MAX_CONTENT_CHARS = 1200
"""Text kept per result (what is injected into the prompt)."""

log = logging.getLogger("farebox.search")


class JsonClient:
    """One pooled aiohttp session for one backend; failures become SearchFailed."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(
                total=self.config.first_byte_timeout_s, sock_connect=self.config.connect_timeout_s
            )
            self._session = aiohttp.ClientSession(timeout=timeout, trust_env=True)
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        body: object = None,
    ) -> Any:
        url = self.config.base_url.rstrip("/") + path
        data = orjson.dumps(body) if body is not None else None
        send = {"Accept": "application/json", **request_id_header(), **headers}
        if data is not None:
            send["Content-Type"] = "application/json"
        try:
            async with self._client().request(
                method, url, params=params, data=data, headers=send
            ) as response:
                raw = await response.read()
                if response.status >= 400:
                    raise SearchFailed(f"{self.config.name} answered HTTP {response.status}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("search backend %s could not be reached: %r", self.config.name, exc)
            raise SearchFailed(f"{self.config.name} could not be reached") from exc
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise SearchFailed(f"{self.config.name} sent a reply that is not JSON") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _results(
    items: object, query: SearchQuery, url_key: str, content_keys: tuple[str, ...], date_key: str
) -> list[SearchResult]:
    out: list[SearchResult] = []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict) or not isinstance(item.get(url_key), str):
            continue
        url = item[url_key]
        if not domain_allowed(url, query.include_domains, query.exclude_domains):
            continue
        content = next((_text(item.get(k)) for k in content_keys if _text(item.get(k))), "")
        out.append(
            SearchResult(
                url=url,
                title=_text(item.get("title")) or url,
                content=content[:MAX_CONTENT_CHARS],
                published=_text(item.get(date_key)) or None,
            )
        )
        if len(out) >= query.max_results:
            break
    return out


def _site_terms(query: SearchQuery) -> str:
    include = " OR ".join(f"site:{d}" for d in query.include_domains)
    exclude = " ".join(f"-site:{d}" for d in query.exclude_domains)
    return " ".join(filter(None, (query.text, f"({include})" if include else "", exclude)))


class Exa:
    def __init__(self, config: ProviderConfig) -> None:
        self.name = config.name
        self.kind = config.kind
        self._http = JsonClient(config)
        self._headers = {"x-api-key": config.api_key or ""}

    async def search(self, query: SearchQuery) -> list[SearchResult]:
        body: dict[str, Any] = {
            "query": query.text,
            "numResults": query.max_results,
            "contents": {"text": {"maxCharacters": MAX_CONTENT_CHARS}},
        }
        if query.include_domains:
            body["includeDomains"] = list(query.include_domains)
        if query.exclude_domains:
            body["excludeDomains"] = list(query.exclude_domains)
        data = await self._http.request("POST", "/search", self._headers, body=body)
        items = data.get("results") if isinstance(data, dict) else None
        return _results(items, query, "url", ("text", "summary"), "publishedDate")

    async def close(self) -> None:
        await self._http.close()


class Serper:
    def __init__(self, config: ProviderConfig) -> None:
        self.name = config.name
        self.kind = config.kind
        self._http = JsonClient(config)
        self._headers = {"X-API-KEY": config.api_key or ""}

    async def search(self, query: SearchQuery) -> list[SearchResult]:
        body = {"q": _site_terms(query), "num": query.max_results}
        data = await self._http.request("POST", "/search", self._headers, body=body)
        items = data.get("organic") if isinstance(data, dict) else None
        return _results(items, query, "link", ("snippet",), "date")

    async def close(self) -> None:
        await self._http.close()


class Brave:
    def __init__(self, config: ProviderConfig) -> None:
        self.name = config.name
        self.kind = config.kind
        self._http = JsonClient(config)
        self._headers = {"X-Subscription-Token": config.api_key or ""}

    async def search(self, query: SearchQuery) -> list[SearchResult]:
        params = {"q": _site_terms(query), "count": str(query.max_results)}
        data = await self._http.request("GET", "/web/search", self._headers, params=params)
        web = data.get("web") if isinstance(data, dict) else None
        items = web.get("results") if isinstance(web, dict) else None
        return _results(items, query, "url", ("description",), "page_age")

    async def close(self) -> None:
        await self._http.close()


class SearXNG:
    def __init__(self, config: ProviderConfig) -> None:
        self.name = config.name
        self.kind = config.kind
        self._http = JsonClient(config)

    async def search(self, query: SearchQuery) -> list[SearchResult]:
        params = {"q": _site_terms(query), "format": "json"}
        data = await self._http.request("GET", "/search", {}, params=params)
        items = data.get("results") if isinstance(data, dict) else None
        return _results(items, query, "url", ("content",), "publishedDate")

    async def close(self) -> None:
        await self._http.close()


def build_backend(config: ProviderConfig) -> SearchBackend | None:
    """The backend for a catalog provider of a search kind (None if it needs a key it lacks)."""
    if config.kind == "searxng":
        return SearXNG(config)
    if not config.api_key:
        return None
    if config.kind == "exa":
        return Exa(config)
    if config.kind == "serper":
        return Serper(config)
    if config.kind == "brave":
        return Brave(config)
    return None
