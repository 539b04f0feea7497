"""Catalog fields of native web search: which provider API offers its own search, which models
search with it, and the price of one search.

A provider's `web_search` names the search its API offers ("openai": `web_search_options` on
chat completions; "anthropic": the `web_search` server tool; "perplexity": its models always
search). A model's `web_search` says the model searches that way (on the routes whose provider
offers it) and needs `unit_prices.web_search`, the price of one search. The web plugin then
uses the native search for that model (see farebox/search/native.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import parse
from .model import NATIVE_SEARCHES, WEB_SEARCH_UNIT, ProviderConfig, Route
from .parse import JsonObject, Where

PROVIDER_KEYS = ("web_search",)
MODEL_KEYS = ("web_search",)
_KINDS = {"openai": "openai", "anthropic": "anthropic", "perplexity": "openai"}
"""The provider kind (wire format) each native search rides on."""


def _search(obj: JsonObject, where: Where) -> str | None:
    if "web_search" not in obj or obj["web_search"] is None:
        return None
    value = parse.string(obj["web_search"], where, "web_search")
    if value not in NATIVE_SEARCHES:
        raise where.error(
            f"unknown native search {value!r} (known: {', '.join(NATIVE_SEARCHES)})", "web_search"
        )
    return value


def provider_search(obj: JsonObject, kind: str, where: Where) -> str | None:
    """The native search a provider's API offers (only on a provider of its wire kind)."""
    search = _search(obj, where)
    if search is not None and _KINDS[search] != kind:
        raise where.error(
            f"{search!r} search needs a provider of kind {_KINDS[search]!r}", "web_search"
        )
    return search


def model_fields(
    obj: JsonObject,
    model_type: str,
    routes: tuple[Route, ...],
    providers: Mapping[str, ProviderConfig],
    unit_prices: Mapping[str, int],
    where: Where,
) -> dict[str, Any]:
    """`web_search` of a chat model: priced, and reachable on at least one route that offers it."""
    search = _search(obj, where)
    if search is None:
        return {}
    if model_type != "chat":
        raise where.error("only chat models search the web", "web_search")
    if WEB_SEARCH_UNIT not in unit_prices:
        raise where.error(
            f'needs unit_prices.{WEB_SEARCH_UNIT} (the price of one search, e.g. "0.012")',
            "web_search",
        )
    if not any(providers[r.provider].web_search == search for r in routes):
        raise where.error(
            f'no route goes to a provider with "web_search": "{search}"', "web_search"
        )
    return {"web_search": search}
