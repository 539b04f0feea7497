"""One paid embeddings request: count tokens, hold, call the upstream, settle on its usage."""

from __future__ import annotations

from typing import Any

import orjson

from farebox.billing.pricing import input_cost
from farebox.catalog.model import Catalog, Route
from farebox.embeddings.request import EmbeddingCall, EmbeddingInput, embedding_call
from farebox.errors import UpstreamError
from farebox.keys.store import ApiKey
from farebox.ledger.types import QueryRecord
from farebox.modalities.paid import PaidResult, Payer, call_capability, usd
from farebox.providers.router import Router


class EmbeddingService:
    def __init__(self, catalog: Catalog, router: Router, payer: Payer) -> None:
        self.catalog = catalog
        self.router = router
        self.payer = payer

    async def embed(self, key: ApiKey, ask: EmbeddingInput, source: str = "api") -> PaidResult:
        call = embedding_call(ask, self.catalog)
        quote = input_cost(call.model.price, call.tokens)
        charge = self.payer.charge(key, call.model)
        # The upstream counts with its own tokenizer: hold half again as much (at least the
        # quote), then settle on what it reports.
        held = await charge.open(quote + quote // 2, quote)

        async def attempt(provider: Any, route: Route) -> dict[str, Any]:
            result: dict[str, Any] = await provider.embed(call.upstream_body(route.upstream_model))
            return result

        try:
            body = await call_capability(self.router, call.model, "embed", attempt)
            data = body.get("data")
            if not isinstance(data, list) or len(data) != len(call.inputs):
                raise UpstreamError(
                    "The upstream provider sent an unreadable embeddings response. "
                    "Nothing was charged."
                )
        except BaseException:
            charge.void()
            raise
        tokens = _reported_tokens(body, call)
        cost = min(input_cost(call.model.price, tokens), held)
        charge.settle(
            cost,
            QueryRecord(
                model=call.model.id,
                input_count=tokens,
                output_count=0,
                query_type="embedding",
                query_source=source,
                is_free_model=call.model.is_free,
            ),
        )
        body["model"] = call.model.id
        body["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens, "cost": usd(cost)}
        body["cost"] = usd(cost)
        return PaidResult(cost_nanos=cost, request_id=charge.request_id, body=orjson.dumps(body))


def _reported_tokens(body: dict[str, Any], call: EmbeddingCall) -> int:
    """The upstream's prompt_tokens when it reports them, else our own count."""
    usage = body.get("usage")
    if isinstance(usage, dict):
        tokens = usage.get("prompt_tokens", usage.get("total_tokens"))
        if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0:
            return tokens
    return call.tokens
