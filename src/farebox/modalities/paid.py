"""Who pays (a key, or a paid 402 credential), capability routing, and the priced result of
one request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from farebox.billing.charge import Charge, KeyReloader
from farebox.catalog.model import CatalogModel, Route, model_kind
from farebox.errors import FareboxError, InsufficientFunds, InvalidRequest
from farebox.keys.store import ApiKey, KeyStore
from farebox.ledger.service import Ledger
from farebox.ledger.types import KeyBudget
from farebox.limits.gate import KeyGate
from farebox.money import nanos_to_usd
from farebox.providers.base import UpstreamFailure
from farebox.providers.router import Router

T = TypeVar("T")
Model = CatalogModel | str  # what a request is for: a catalog model, or a data endpoint's id


@dataclass(slots=True)
class PaidResult:
    """A whole response body (or a stream of bytes) and what it cost, in nanodollars."""

    cost_nanos: int
    request_id: str
    body: bytes = b""
    media_type: str = "application/json"
    stream: AsyncIterator[bytes] | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


# What a paid-credential buyer gets instead of "insufficient funds": a fresh 402 challenge.
Refused = Callable[[], Awaitable[FareboxError]]


@dataclass(frozen=True)
class Buyer:
    """Who pays for one request: an API key's account, or a paid 402 credential's or Cashu
    token's account (no key; `source` names the scheme for the history row, `refused` makes the
    fresh challenge a spent credential gets, and `limit`, for a request priced at its worst
    case (chat), is that price: the most one request holds)."""

    payer: Payer
    account_id: str
    key: ApiKey | None = None
    source: str = "api"
    refused: Refused | None = None
    limit: int | None = None

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key is not None else None

    async def hold(self, charge: Charge, want: int, minimum: int) -> int:
        """charge.open(want, minimum); a paid credential that cannot pay gets a fresh 402."""
        try:
            return await charge.open(want, minimum)
        except InsufficientFunds:
            if self.refused is None:
                raise
            raise await self.refused() from None

    async def open(self, price: int, model: Model, hold_timeout_s: float | None = None) -> Charge:
        """Hold `price` (the request's exact price) for `model` before any upstream call."""
        charge = self.payer.charge(self, model, hold_timeout_s)
        await self.hold(charge, price, price)
        return charge


class Payer:
    """Makes the Charge of one request for a buyer (as the chat pipeline does for a key)."""

    def __init__(
        self,
        ledger: Ledger,
        keys: KeyStore,
        hold_timeout_s: float,
        gate: KeyGate | None = None,
    ) -> None:
        self.ledger = ledger
        self.keys = keys
        self.hold_timeout_s = hold_timeout_s
        self.gate = gate  # keys' model scopes and rate limits (limits/gate.py)

    def for_key(self, key: ApiKey, source: str = "api") -> Buyer:
        return Buyer(self, key.account_id, key, source)

    def for_account(
        self, account_id: str, source: str, refused: Refused | None, limit: int | None = None
    ) -> Buyer:
        """A keyless buyer: a paid credential's (or Cashu token's) own ledger account."""
        return Buyer(self, account_id, None, source, refused, limit)

    def charge(
        self, buyer: Buyer | ApiKey, model: Model, hold_timeout_s: float | None = None
    ) -> Charge:
        """The Charge of one request for `model` (a catalog model, or a data endpoint's id)."""
        if isinstance(buyer, ApiKey):
            buyer = self.for_key(buyer)
        key = buyer.key
        reload: KeyReloader | None = None
        if key is not None:

            async def reload_key() -> KeyBudget:
                fresh = await self.keys.reload(key.id, key.account_id)
                return fresh.budget()

            reload = reload_key

        return Charge(
            ledger=self.ledger,
            account_id=buyer.account_id,
            key=key.budget() if key is not None else None,
            hold_timeout_s=hold_timeout_s or self.hold_timeout_s,
            reload_key=reload,
            admission=(self.gate.admission(key, model) if self.gate is not None else None),
        )


async def call_capability(
    router: Router,
    model: CatalogModel,
    capability: str,
    attempt: Callable[[Any, Route], Awaitable[T]],
) -> T:
    """Router.call, skipping (as a retryable failure) providers that lack `capability`."""

    async def guarded(provider: Any, route: Route) -> T:
        if not callable(getattr(provider, capability, None)):
            raise UpstreamFailure(
                f"provider {route.provider} cannot serve {capability}", provider=route.provider
            )
        return await attempt(provider, route)

    return await router.call(model, guarded)


def require_type(model: CatalogModel, *types: str, endpoint: str) -> None:
    if model.type not in types:
        raise InvalidRequest(
            f"The model {model.id!r} is {model_kind(model.type)} and cannot be used with "
            f"{endpoint}. See GET /v1/models?type={types[0]} for the models that can.",
            param="model",
        )


def usd(nanos: int) -> float:
    """A cost for a response body: USD as a JSON number."""
    return nanos_to_usd(nanos)


def json_bytes(payload: Any) -> bytes:
    return orjson.dumps(payload)
