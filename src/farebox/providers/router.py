"""Routing a model to its upstreams: the ordered routes, falling back before the first byte."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import orjson

from farebox.catalog.model import Catalog, CatalogModel, ProviderConfig, Route
from farebox.errors import FareboxError, UpstreamError, UpstreamUnavailable
from farebox.observe.context import note_model, note_upstream_wait
from farebox.observe.hooks import RouteEvents
from farebox.providers.anthropic import AnthropicMessages
from farebox.providers.base import ChatProvider, UpstreamFailure, UpstreamReply
from farebox.providers.breaker import RouteHealth, RoutingPolicy
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


def _worth_retrying(failures: list[UpstreamFailure]) -> bool:
    """Another pass helps with overload, 5xx, timeouts and broken connections, not with a
    provider that refuses the operator's credentials or does not know the model."""
    return any(f.status not in (401, 403, 404) for f in failures)


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
    def __init__(
        self, providers: Mapping[str, ChatProvider], policy: RoutingPolicy | None = None
    ) -> None:
        self.providers = dict(providers)
        self.health = RouteHealth(policy or RoutingPolicy())
        self._rng = random.Random()
        self.events = RouteEvents()  # attempts, failures, fallbacks (observe.install: metrics)

    @classmethod
    def from_catalog(cls, catalog: Catalog, policy: RoutingPolicy | None = None) -> Router:
        providers = {}
        for name, config in catalog.providers.items():
            provider = build_provider(config)
            if provider is not None:
                providers[name] = provider
        return cls(providers, policy)

    async def call(
        self,
        model: CatalogModel,
        attempt: Callable[[Any, Route], Awaitable[T]],
        *,
        resilient: bool = False,
    ) -> T:
        """Run `attempt(provider, route)` on each route in order until one succeeds.

        A retryable UpstreamFailure (429, 5xx, connect error, timeout: raised before any output
        reached the customer) moves on to the next route; any other failure goes back to the
        customer at once. Every modality routes through here.

        `resilient` calls also skip routes their circuit breaker rests, record each outcome in
        it, and when every route failed retryably go over them again after a backoff
        (RoutingPolicy.retries times).
        """
        failures: list[UpstreamFailure] = []
        resting = False
        events = self.events
        failed_route: Route | None = None  # the last route that failed retryably
        note_model(model.id)
        passes = 1 + (self.health.policy.retries if resilient else 0)
        for retry in range(passes):
            if retry:
                if not _worth_retrying(failures):
                    break
                await asyncio.sleep(self.health.policy.backoff(retry, self._rng))
            tried = False
            for route in model.routes:
                provider = self.providers.get(route.provider)
                if provider is None:
                    continue
                breaker = self.health.breaker(route.provider, route.upstream_model)
                if resilient and not breaker.allow(self.health.clock()):
                    resting = True
                    continue
                tried = True
                if failed_route is not None:
                    events.fallback(failed_route.provider, model.id)
                    failed_route = None
                started = time.perf_counter()
                try:
                    result = await attempt(provider, route)
                except UpstreamFailure as failure:
                    waited = time.perf_counter() - started
                    note_upstream_wait(waited)
                    events.attempt(route.provider, model.id, waited)
                    events.failed(route.provider, model.id, failure.status, failure.message)
                    log.warning(
                        "route %s/%s failed: %s", route.provider, model.id, failure.for_log()
                    )
                    if not failure.retryable:
                        if resilient:
                            breaker.success()  # it answered: the request was the problem
                        raise UpstreamRejected(
                            "The upstream provider refused the request: "
                            f"{_upstream_message(failure)}",
                            status=failure.status or 400,
                        ) from failure
                    if resilient:
                        breaker.failure(self.health.clock(), failure.for_log())
                        events.breaker(route.provider, route.upstream_model, breaker.state)
                    failures.append(failure)
                    failed_route = route
                    continue
                except BaseException:
                    if resilient:
                        breaker.release()
                    raise
                waited = time.perf_counter() - started
                note_upstream_wait(waited)
                events.attempt(route.provider, model.id, waited)
                if resilient:
                    breaker.success()
                    events.breaker(route.provider, route.upstream_model, breaker.state)
                return result
            if not tried:
                break  # every route is resting: retrying now would not reach any
        if not failures and resting:
            raise UpstreamUnavailable(
                f"Every provider for {model.id} is resting after repeated failures. Nothing was "
                "charged; try again shortly."
            )
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
            limit = provider.config.first_byte_timeout_s
            try:
                async with asyncio.timeout(limit):
                    chat_for = getattr(provider, "chat_for", None)
                    if chat_for is not None:
                        reply: UpstreamReply = await chat_for(
                            model, route, body, stream, headers or {}, native
                        )
                        return reply
                    return await provider.chat(route.upstream_model, body, stream, headers or {})
            except TimeoutError as exc:
                raise UpstreamFailure(
                    f"{route.provider} sent no first byte within {limit:g} s",
                    provider=route.provider,
                ) from exc

        return await self.call(model, attempt, resilient=True)

    def route_health(self) -> list[dict[str, Any]]:
        """Every route this router has used, with its breaker's state."""
        return self.health.snapshot()

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.close()
