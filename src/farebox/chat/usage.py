"""Usage as the upstream reports it, and as we report it to the customer (with its cost)."""

from __future__ import annotations

from typing import Any

from farebox.billing.pricing import TokenUsage
from farebox.money import nanos_to_usd


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from_upstream(usage: Any) -> TokenUsage | None:
    """OpenAI's usage object -> TokenUsage; None when it is missing or malformed."""
    if not isinstance(usage, dict) or "completion_tokens" not in usage:
        return None
    details = usage.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    written = _int(details.get("cache_write_tokens")) if isinstance(details, dict) else 0
    return TokenUsage(
        prompt_tokens=_int(usage.get("prompt_tokens")),
        completion_tokens=_int(usage.get("completion_tokens")),
        cached_tokens=cached,
        cache_write_tokens=written,
    )


def usage_payload(
    usage: TokenUsage, cost_nanos: int, upstream: dict[str, Any] | None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }
    if isinstance(upstream, dict):
        for key in ("prompt_tokens_details", "completion_tokens_details"):
            if isinstance(upstream.get(key), dict):
                payload[key] = upstream[key]
    payload["cost"] = nanos_to_usd(cost_nanos)
    return payload
