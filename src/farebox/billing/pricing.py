"""Token prices to nanodollars, exactly, in integers."""

from __future__ import annotations

from farebox.catalog.model import TokenPrices
from farebox.money import TOKENS_PER_MILLION, per_million_cost
from farebox.records import record

UNLIMITED_TOKENS = 1 << 40


@record
class TokenUsage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # prompt tokens read from the upstream's cache
    cache_write_tokens: int = 0  # prompt tokens written to the upstream's cache


def input_cost(prices: TokenPrices, tokens: int) -> int:
    return per_million_cost(tokens, prices.input)


def quote_input_cost(prices: TokenPrices, tokens: int) -> int:
    """The most a prompt of `tokens` may cost: at the dearest input-side rate, since an upstream
    may write the prompt to its cache at a rate above plain input (Anthropic: 1.25x)."""
    return per_million_cost(tokens, max(prices.input, prices.cache_write or 0))


def output_cost(prices: TokenPrices, tokens: int) -> int:
    return per_million_cost(tokens, prices.output)


def usage_cost(prices: TokenPrices, usage: TokenUsage) -> int:
    """The sale price of a request's usage. Cached tokens are priced at the cache rates when set."""
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    plain = usage.prompt_tokens - cached - written
    cache_read_rate = prices.cache_read if prices.cache_read is not None else prices.input
    cache_write_rate = prices.cache_write if prices.cache_write is not None else prices.input
    return (
        per_million_cost(plain, prices.input)
        + per_million_cost(cached, cache_read_rate)
        + per_million_cost(written, cache_write_rate)
        + per_million_cost(usage.completion_tokens, prices.output)
    )


def tokens_for_budget(nanos_per_million: int, budget: int) -> int:
    """The most tokens whose cost (rounded up) fits in `budget` nanodollars."""
    if nanos_per_million <= 0:
        return UNLIMITED_TOKENS  # a free model's output is never limited by money
    if budget <= 0:
        return 0
    return budget * TOKENS_PER_MILLION // nanos_per_million
