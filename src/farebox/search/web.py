"""The web plugin: search before the model answers, inject the results, cite them, bill them.

Per request (an addon of the chat charge, see chat/addons.py): the hold covers `max_results`
results at the model's `unit_prices.web_search_result` (else the gateway default) plus the
prompt tokens the results may add. After the hold, the last user message is searched (backends
in catalog order, the next one if one fails); the results go in as a system message right before
the last user message, with the date and an instruction to cite them as markdown links. The
reply carries them as `url_citation` annotations and `usage.web_search` {results, cost, engine};
the settled cost adds results x price. A failed search does not fail the request: the model
answers without results, `usage.web_search.error` says so, and no search is billed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from farebox.billing.pricing import quote_input_cost
from farebox.catalog.model import Catalog, ProviderConfig, Route, TokenPrices
from farebox.chat.sse import data_event, event_data, rewrite_events
from farebox.errors import InvalidRequest
from farebox.money import nanos_to_usd, usd_to_nanos
from farebox.search.backends import build_backend
from farebox.search.native import (
    ALWAYS_SEARCHES,
    OPTIONS,
    NativeSearchAddon,
    native_routes,
    search_price,
)
from farebox.search.options import DEFAULT_RESULTS, MAX_RESULTS, NATIVE, WebOptions
from farebox.search.results import SearchBackend, SearchFailed, SearchQuery, SearchResult

PRICE_UNIT = "web_search_result"
"""The catalog `unit_prices` key for a model's price per search result."""
PRICE_ENV = "FAREBOX_WEB_SEARCH_PRICE_USD"
DEFAULT_PRICE_USD = "0.004"
"""Per result, when neither the model nor the env sets one ($4 per 1000, as Exa via OpenRouter)."""
TOKENS_PER_RESULT = 450
"""Most prompt tokens one injected result adds (its text is cut at 1200 characters)."""
HEADER_TOKENS = 120
MAX_QUERY_CHARS = 400
DEFAULT_PROMPT = (
    "A web search was conducted on {date}. Incorporate the following web search results into "
    "your response.\n\nIMPORTANT: Cite them using markdown links named using the domain of the "
    "source.\nExample: [nytimes.com](https://nytimes.com/some-page)."
)


def _query_text(messages: object) -> str:
    """The last user message's text (what the customer asked)."""
    for message in reversed(messages if isinstance(messages, list) else []):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            text = content
        elif isinstance(content, list):
            text = " ".join(
                p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
            )
        else:
            continue
        if text.strip():
            return " ".join(text.split())[:MAX_QUERY_CHARS]
    return ""


def results_text(options: WebOptions, results: list[SearchResult], today: str) -> str:
    head = (options.search_prompt or DEFAULT_PROMPT).replace("{date}", today)
    if options.search_prompt and today not in head:
        head = f"Search date: {today}.\n{head}"
    parts = [head]
    for i, result in enumerate(results, 1):
        lines = [f"[{i}] {result.title}", f"URL: {result.url}"]
        if result.published:
            lines.append(f"Published: {result.published}")
        lines.append(result.content)
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _insert_before_last_user(messages: list[Any], message: dict[str, Any]) -> list[Any]:
    index = max(
        (i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"),
        default=len(messages),
    )
    return [*messages[:index], message, *messages[index:]]


def _native_with_results(body: Mapping[str, Any], text: str) -> dict[str, Any]:
    """An Anthropic Messages body with the results as a first text block of the last user turn."""
    out = dict(body)
    messages = list(out.get("messages") or [])
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            blocks: list[Any] = (
                [{"type": "text", "text": content}]
                if isinstance(content, str)
                else list(content or [])
            )
            messages[i] = {**message, "content": [{"type": "text", "text": text}, *blocks]}
            break
    out["messages"] = messages
    return out


def url_citations(results: list[SearchResult], text: str) -> list[dict[str, Any]]:
    """`url_citation` annotations; the indexes are where the answer first cites the URL
    (0, 0 when it does not)."""
    out = []
    for result in results:
        start = text.find(result.url)
        end = start + len(result.url) if start >= 0 else 0
        out.append(
            {
                "type": "url_citation",
                "url_citation": {
                    "url": result.url,
                    "title": result.title,
                    "content": result.content[:300],
                    "start_index": max(start, 0),
                    "end_index": end,
                },
            }
        )
    return out


class WebSearch:
    """The search backends and the default price; makes one addon per web request."""

    def __init__(
        self,
        backends: list[SearchBackend],
        default_price_nanos: int,
        today: Callable[[], str] = lambda: datetime.now(UTC).date().isoformat(),
        providers: Mapping[str, ProviderConfig] | None = None,
    ) -> None:
        self.backends = backends
        self.default_price_nanos = default_price_nanos
        self.today = today
        self.providers = dict(providers or {})  # for the routes that offer a native search

    @classmethod
    def from_catalog(cls, catalog: Catalog, env: Mapping[str, str]) -> WebSearch:
        backends = [
            backend
            for config in catalog.providers.values()
            if (backend := build_backend(config)) is not None
        ]
        price = usd_to_nanos(env.get(PRICE_ENV) or DEFAULT_PRICE_USD)
        if price < 0:
            raise ValueError(f"{PRICE_ENV} must not be negative")
        return cls(backends, price, providers=catalog.providers)

    def addon_for(self, call: Any) -> WebSearchAddon | NativeSearchAddon | None:
        """The search a chat call buys: the model's own (native) search where it has one (always,
        for a model that searches on every request), else farebox's backends when the web plugin
        is asked for; `engine` picks. Raises InvalidRequest (before anything is held) for an
        engine the model cannot use."""
        options: WebOptions | None = getattr(call, "web", None)
        asked: int | None = getattr(call, "native_search", None)  # the customer's own tool
        model = call.model
        native: str | None = model.web_search
        engine = options.engine if options is not None else None
        if asked is not None or engine == NATIVE:
            if native is None:
                raise InvalidRequest(
                    f"{model.id} has no native web search on this gateway. Use the web plugin "
                    'without "engine" (or with "engine": "exa") to search with farebox\'s search '
                    "backends.",
                    param="plugins.engine" if asked is None else "tools",
                )
        elif native in ALWAYS_SEARCHES and engine is not None:
            raise InvalidRequest(
                f"{model.id} searches the web with its provider's own search on every request; "
                f'"engine": "{engine}" cannot be used with it (leave engine out).',
                param="plugins.engine",
            )
        if native is not None and (native in ALWAYS_SEARCHES or engine in (None, NATIVE)):
            if options is None and asked is None and native not in ALWAYS_SEARCHES:
                return None
            # a model that always searches keeps its unconfigured routes (the router says what
            # is missing): any other route would search in a way farebox does not bill
            always = native in ALWAYS_SEARCHES
            routes = native_routes(model.routes, self.providers, native, configured=not always)
            if routes:
                return self._native(call, native, options, asked, routes)
            if engine == NATIVE or asked is not None:
                raise InvalidRequest(
                    f"No provider with {model.id}'s own web search is configured on this "
                    "gateway; leave engine out to search with farebox's search backends.",
                    param="plugins.engine",
                )
        if options is None:
            return None
        price = model.unit_prices.get(PRICE_UNIT, self.default_price_nanos)
        return WebSearchAddon(self, options, price, model.price)

    def _native(
        self,
        call: Any,
        native: str,
        options: WebOptions | None,
        asked: int | None,
        routes: tuple[Route, ...],
    ) -> NativeSearchAddon:
        model = call.model
        wanted = asked or (options.max_results if options is not None else DEFAULT_RESULTS)
        domains = (options.include_domains, options.exclude_domains) if options else ((), ())
        if native != "anthropic" and any(domains):
            raise InvalidRequest(
                f"{model.id}'s own search takes no domain filters; leave include_domains "
                "and exclude_domains out.",
                param="plugins",
            )
        price = search_price(native, model.unit_prices, call.body.get(OPTIONS))
        return NativeSearchAddon(
            native, price, min(wanted, MAX_RESULTS), routes, model.price, domains
        )

    async def search(
        self, query: SearchQuery, kind: str | None = None
    ) -> tuple[list[SearchResult], str]:
        """Results from the first backend (of `kind`, if given) that answers, and its name."""
        backends = [b for b in self.backends if kind is None or b.kind == kind]
        if not backends:
            raise SearchFailed(
                f"no {kind or 'search'} backend is configured (the operator adds an exa, serper, "
                "brave or searxng provider to the catalog)"
            )
        errors = []
        for backend in backends:
            try:
                return await backend.search(query), backend.name
            except SearchFailed as exc:
                errors.append(str(exc))
        raise SearchFailed("; ".join(errors))

    async def close(self) -> None:
        for backend in self.backends:
            await backend.close()


class WebSearchAddon:
    """One request's search: held, run, injected, cited and billed."""

    def __init__(
        self, web: WebSearch, options: WebOptions, price_nanos: int, prices: TokenPrices
    ) -> None:
        self.web = web
        self.options = options
        self.price_nanos = price_nanos
        tokens = options.max_results * TOKENS_PER_RESULT + HEADER_TOKENS
        self.max_nanos = options.max_results * price_nanos + quote_input_cost(prices, tokens)
        self.actual_nanos = 0
        self.results: list[SearchResult] = []
        self.engine: str | None = None
        self.error: str | None = None

    async def prepare(self, call: Any) -> None:
        text = _query_text(call.body.get("messages"))
        if not text:
            self.error = "There was nothing to search for: the last user message has no text."
            return
        query = SearchQuery(
            text,
            self.options.max_results,
            self.options.include_domains,
            self.options.exclude_domains,
        )
        try:
            self.results, self.engine = await self.web.search(query, self.options.engine)
        except SearchFailed as exc:
            self.error = f"The web search failed ({exc}); answered without web results."
            return
        self.actual_nanos = len(self.results) * self.price_nanos
        if not self.results:
            return
        injected = results_text(self.options, self.results, self.web.today())
        call.body["messages"] = _insert_before_last_user(
            call.body["messages"], {"role": "system", "content": injected}
        )
        native = getattr(call, "native", None)
        if native:
            call.native = {
                kind: type(request)(
                    body=_native_with_results(request.body, injected),
                    headers=request.headers,
                    query=request.query,
                )
                for kind, request in native.items()
            }

    def reply_seen(self, usage: dict[str, Any] | None) -> None:
        """The searches were billed before the call (`prepare`): nothing to learn here."""

    def usage(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "results": len(self.results),
            "cost": nanos_to_usd(self.actual_nanos),
            "engine": self.engine,
        }
        if self.error:
            info["error"] = self.error
        return info

    def decorate(self, completion: dict[str, Any]) -> None:
        for choice in completion.get("choices") or ():
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict) and self.results:
                content = message.get("content")
                message["annotations"] = url_citations(
                    self.results, content if isinstance(content, str) else ""
                )
        usage = completion.get("usage")
        if isinstance(usage, dict):
            usage["web_search"] = self.usage()

    def wrap(self, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        text: list[str] = []
        return rewrite_events(stream, lambda event: self._event(event, text))

    def _event(self, event: bytes, text: list[str]) -> list[bytes]:
        payload = event_data(event)
        if payload is None or not payload.startswith(b"{"):
            return [event]
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return [event]
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        if choices:
            for choice in choices:
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                    text.append(delta["content"])
            return [event]
        if not isinstance(chunk, dict) or not isinstance(chunk.get("usage"), dict):
            return [event]
        chunk["usage"]["web_search"] = self.usage()
        out = []
        if self.results:
            cited = url_citations(self.results, "".join(text))
            note = {k: chunk.get(k) for k in ("id", "object", "created", "model")}
            note["choices"] = [{"index": 0, "delta": {"annotations": cited}, "finish_reason": None}]
            out.append(data_event(note))
        out.append(data_event(chunk))
        return out
