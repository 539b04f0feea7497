"""The web plugin on a model whose provider searches itself: the provider's search is asked for
upstream (nothing is injected), held for before the call and billed for what the upstream did.

Which search (the catalog's `web_search`, catalog/native_search.py), as OpenRouter's web plugin
does it (native for OpenAI, Anthropic and Perplexity models, Exa for the rest):
- "anthropic": the `web_search` server tool, with `max_uses` set to the most searches held for
  (the plugin's `max_results`, or the customer's own tool's `max_uses`, at most 20). Billed per
  search the reply reports (`usage.server_tool_use.web_search_requests`); the results Anthropic
  reads count as input tokens, so the hold also covers SEARCH_TOKENS input tokens per search.
- "openai": `web_search_options` on chat completions (OpenAI's search models, which search on
  every request): one search per answered request.
- "perplexity": its models search on every request: one search per answered request; its
  top-level `citations` / `search_results` become `url_citation` annotations.

The request goes only to the model's routes whose provider offers that search and has its key (a
fallback that cannot search natively would answer unsearched, or search in a way farebox does not
bill). A model that searches only when asked (Anthropic) with no such route configured uses
farebox's backends instead. One search's price may depend on `search_context_size`
(`unit_prices["web_search:high"]`, Perplexity's request fee), else `unit_prices.web_search`.
The reply keeps the upstream's `url_citation` annotations, and `usage.web_search` says
{requests, results, cost, engine: "native"}.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from farebox.billing.pricing import quote_input_cost
from farebox.catalog.model import WEB_SEARCH_UNIT, ProviderConfig, Route, TokenPrices
from farebox.chat.sse import data_event, event_data, rewrite_events
from farebox.errors import InvalidRequest
from farebox.money import nanos_to_usd

ALWAYS_SEARCHES = frozenset({"openai", "perplexity"})
"""Native searches that run on every request to the model, asked for or not."""
SEARCH_TOKENS = {"anthropic": 10_000, "openai": 0, "perplexity": 0}
"""Input tokens one search may add that the upstream bills (Anthropic counts the results it
reads as input; OpenAI's search models and Perplexity do not)."""
OPTIONS = "web_search_options"
"""Where the chat body asks an upstream for its own search (OpenAI's field; the Anthropic
adapter turns it into the `web_search` tool, reading `max_uses` and the domain lists here)."""


CONTEXT_SIZES = ("low", "medium", "high")
DEFAULT_SIZE = {"openai": "medium", "perplexity": "low"}
"""`web_search_options.search_context_size` when the request sets none (OpenAI's and
Perplexity's defaults); a catalog may price each size as `web_search:<size>`."""


def native_routes(
    routes: tuple[Route, ...],
    providers: Mapping[str, ProviderConfig],
    search: str,
    configured: bool = True,
) -> tuple[Route, ...]:
    """The routes whose provider offers `search` (and, if `configured`, has its key or needs
    none)."""
    return tuple(
        r
        for r in routes
        if (p := providers.get(r.provider)) is not None
        and p.web_search == search
        and (not configured or p.api_key or not p.api_key_env)
    )


def search_price(search: str, unit_prices: Mapping[str, int], options: object) -> int:
    """One search's price: `web_search:<size>` for the request's search_context_size (or the
    provider's default size), else `web_search`. Raises InvalidRequest for an unknown size."""
    size = options.get("search_context_size") if isinstance(options, dict) else None
    if size is not None and size not in CONTEXT_SIZES:
        raise InvalidRequest(
            f"web_search_options.search_context_size must be one of {', '.join(CONTEXT_SIZES)}",
            param="web_search_options.search_context_size",
        )
    size = size or DEFAULT_SIZE.get(search)
    return unit_prices.get(f"{WEB_SEARCH_UNIT}:{size}", unit_prices[WEB_SEARCH_UNIT])


def _citation(url: str, title: str) -> dict[str, Any]:
    return {
        "type": "url_citation",
        "url_citation": {"url": url, "title": title, "start_index": 0, "end_index": 0},
    }


def listed_citations(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Perplexity's top-level `search_results` (else `citations`, bare URLs) as annotations."""
    results = body.get("search_results")
    if isinstance(results, list) and results:
        return [
            _citation(r["url"], str(r.get("title") or r["url"]))
            for r in results
            if isinstance(r, dict) and isinstance(r.get("url"), str)
        ]
    urls = body.get("citations")
    return [_citation(u, u) for u in urls if isinstance(u, str)] if isinstance(urls, list) else []


def _reported_searches(usage: object) -> int | None:
    """`usage.server_tool_use.web_search_requests` (0 when usage has no server tool use)."""
    if not isinstance(usage, dict):
        return None
    tools = usage.get("server_tool_use")
    count = tools.get("web_search_requests") if isinstance(tools, dict) else 0
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 0


class NativeSearchAddon:
    """One request's native search: asked for upstream, held for, billed as reported."""

    def __init__(
        self,
        search: str,
        price_nanos: int,
        max_searches: int,
        routes: tuple[Route, ...],
        input_price: TokenPrices,
        domains: tuple[tuple[str, ...], tuple[str, ...]] = ((), ()),
    ) -> None:
        self.search = search
        self.price_nanos = price_nanos
        self.max_searches = 1 if search in ALWAYS_SEARCHES else max_searches
        self.routes = routes
        self.include, self.exclude = domains
        tokens = self.max_searches * SEARCH_TOKENS[search]
        self.max_nanos = self.max_searches * price_nanos + quote_input_cost(input_price, tokens)
        self.actual_nanos = 0
        self.requests = 0
        self.results = 0

    async def prepare(self, call: Any) -> None:
        call.model = dataclasses.replace(call.model, routes=self.routes)
        options = call.body.get(OPTIONS)
        options = dict(options) if isinstance(options, dict) else {}
        if self.search in DEFAULT_SIZE:  # sent, so the upstream's fee is the one held for
            options.setdefault("search_context_size", DEFAULT_SIZE[self.search])
        if self.search == "anthropic":
            options["max_uses"] = self.max_searches
            if self.include:
                options["allowed_domains"] = list(self.include)
            elif self.exclude:
                options["blocked_domains"] = list(self.exclude)
        call.body[OPTIONS] = options

    def reply_seen(self, usage: dict[str, Any] | None) -> None:
        """Bill the searches the upstream's reply reports (its usage; None if it sent none)."""
        if self.search in ALWAYS_SEARCHES:
            count = 1
        else:
            reported = _reported_searches(usage)
            # No usage at all (a stream cut before any search reported): the searches are
            # unknown, and the provider bills what it ran: bill the held most.
            count = self.max_searches if reported is None else reported
        self.requests = min(count, self.max_searches)
        self.actual_nanos = self.requests * self.price_nanos

    def usage(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "results": self.results,
            "cost": nanos_to_usd(self.actual_nanos),
            "engine": "native",
        }

    def decorate(self, completion: dict[str, Any]) -> None:
        listed = listed_citations(completion)
        for choice in completion.get("choices") or ():
            message = choice.get("message") if isinstance(choice, dict) else None
            if not isinstance(message, dict):
                continue
            if listed and not message.get("annotations"):
                message["annotations"] = listed
            cited = message.get("annotations")
            self.results += len(cited) if isinstance(cited, list) else 0
        usage = completion.get("usage")
        if isinstance(usage, dict):
            usage["web_search"] = self.usage()

    def wrap(self, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        listed: list[dict[str, Any]] = []
        return rewrite_events(stream, lambda event: self._event(event, listed))

    def _event(self, event: bytes, listed: list[dict[str, Any]]) -> list[bytes]:
        payload = event_data(event)
        if payload is None or not payload.startswith(b"{"):
            return [event]
        if (
            b'"usage"' not in payload
            and b"annotations" not in payload
            and b"citations" not in (payload)
        ):
            return [event]
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return [event]
        if not isinstance(chunk, dict):
            return [event]
        if not listed:
            listed.extend(listed_citations(chunk))
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            cited = delta.get("annotations") if isinstance(delta, dict) else None
            if isinstance(cited, list):
                self.results += len(cited)
        if chunk.get("choices") or not isinstance(chunk.get("usage"), dict):
            return [event]
        chunk["usage"]["web_search"] = {**self.usage(), "results": self.results or len(listed)}
        out = []
        if listed and not self.results:
            self.results = len(listed)
            note = {k: chunk.get(k) for k in ("id", "object", "created", "model")}
            note["choices"] = [
                {"index": 0, "delta": {"annotations": listed}, "finish_reason": None}
            ]
            out.append(data_event(note))
        out.append(data_event(chunk))
        return out
