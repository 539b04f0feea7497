"""Routing a model to its upstreams: the ordered routes, falling back before the first byte."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import orjson

from farebox.catalog.model import Catalog, CatalogModel, ProviderConfig, Route
from farebox.errors import FareboxError, UpstreamError, UpstreamUnavailable
from farebox.providers.anthropic import AnthropicMessages
from farebox.providers.base import ChatProvider, UpstreamFailure, UpstreamReply
from farebox.providers.native import NativeRequests
from farebox.providers.openai_media import OpenAIMediaProvider

log = logging.getLogger("farebox.providers")

T = TypeVar("T")


class UpstreamRejected(FareboxError):
    """The upstream refused the request itself (e.g. 400): passed back, nothing charged."""

    type = "upstream_error"
    code = "upstream_rejected"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def build_provider(config: ProviderConfig) -> ChatProvider | None:
    if config.kind == "openai":
        return OpenAIMediaProvider(config)  # chat as OpenAICompatible, plus media endpoints
    if config.kind == "anthropic":
        return AnthropicMessages(config)
    return None


def _upstream_message(failure: UpstreamFailure) -> str:
    try:
        data = orjson.loads(failure.body or b"")
        msg = data.get("error", {}).get("message") if isinstance(data, dict) else None
        if isinstance(msg, str):
            return msg
    except orjson.JSONDecodeError:
        pass
    return failure.message


class Router:
    def __init__(self, providers: Mapping[str, ChatProvider]) -> None:
        self.providers = dict(providers)

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> Router:
        providers = {}
        for name, config in catalog.providers.items():
            provider = build_provider(config)
            if provider is not None:
                providers[name] = provider
        return cls(providers)

    async def call(self, model: CatalogModel, attempt: Callable[[Any, Route], Awaitable[T]]) -> T:
        """Run `attempt(provider, route)` on each route in order until one succeeds.

        A retryable UpstreamFailure (429, 5xx, connect error, timeout: raised before any output
        reached the customer) moves on to the next route; any other failure goes back to the
        customer at once. Every modality routes through here.
        """
        failures: list[UpstreamFailure] = []
        for route in model.routes:
            provider = self.providers.get(route.provider)
            if provider is None:
                continue
            try:
                return await attempt(provider, route)
            except UpstreamFailure as failure:
                log.warning("route %s/%s failed: %s", route.provider, model.id, failure.message)
                if not failure.retryable:
                    raise UpstreamRejected(
                        f"The upstream provider refused the request: {_upstream_message(failure)}",
                        status=failure.status or 400,
                    ) from failure
                failures.append(failure)
        if not failures:
            raise UpstreamUnavailable(
                f"Model {model.id} has no reachable provider configured. The operator must add "
                "a provider for it to the catalog (and its API key)."
            )
        summary = "; ".join(f"{f.provider}: {f.message}" for f in failures)
        if all(f.status in (429, 503) for f in failures):
            raise UpstreamUnavailable(
                f"Every provider for {model.id} is busy or unavailable ({summary}). "
                "Nothing was charged; try again shortly."
            )
        raise UpstreamError(
            f"Every provider for {model.id} failed ({summary}). Nothing was charged."
        )

    async def chat(
        self,
        model: CatalogModel,
        body: dict[str, Any],
        stream: bool,
        headers: Mapping[str, str] | None = None,
        native: NativeRequests | None = None,
    ) -> UpstreamReply:
        """The first route that answers (and, streaming, sends a first byte) wins.

        A provider that translates (it has `chat_for`) also gets the model and the original
        request in its own format, when the front kept one (see providers/native.py).
        """

        async def attempt(provider: ChatProvider, route: Route) -> UpstreamReply:
            chat_for = getattr(provider, "chat_for", None)
            if chat_for is not None:
                reply: UpstreamReply = await chat_for(
                    model, route, body, stream, headers or {}, native
                )
                return reply
            return await provider.chat(route.upstream_model, body, stream, headers or {})

        return await self.call(model, attempt)

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.close()
