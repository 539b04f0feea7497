"""Paid endpoints without an API key: the HTTP edge of the 402 flow (pay402/ and cashu/ do the
work).

A route reads the caller's key (`key_or_keyless`: a bad key is a 401, no key is a keyless
request when pay per request is on), validates and prices the request, then asks
`purchase_for` who pays: the key's account, or, with no key, the account of a paid credential
(L402, Payment) or of a Cashu token (X-Cashu), which raises a 402 with a fresh challenge until
one is presented. Any paid endpoint plugs in the same way:

    key = await key_or_keyless(services, request)
    order = ...validate and price the request (a 400 here costs nothing)...
    async with await purchase_for(services, request, key, Offer(ENDPOINT, price, "what")) as paid:
        result = ...serve it, holding the price with `await paid.buyer.open(price)`...
        result.headers.update(await paid.settled())   # or: stream paid.stream(events)

What the response then says about the payment: a Payment-Receipt, what is left on a paid
credential (X-Farebox-Credential-Balance), or a Cashu payer's change (X-Cashu: cashuB…, and
X-Cashu-Change-Id to fetch it again from GET /v1/cashu/change/{id}). A request that fails after
a Cashu payment gives the whole payment back as change, on its error response.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType

from starlette.requests import Request

from farebox.api.requests import bearer_key, require_key
from farebox.api.services import Services
from farebox.cashu.service import CashuPayments, change_headers
from farebox.cashu.store import Change
from farebox.chat.sse import DONE_EVENT, data_event
from farebox.errors import FareboxError, Unauthorized
from farebox.keys.store import ApiKey
from farebox.ledger.service import Ledger
from farebox.modalities.paid import Buyer
from farebox.money import format_usd
from farebox.net.client_ip import rate_key
from farebox.pay402.encoding import rfc3339
from farebox.pay402.types import Offer

CASHU_HEADER = "x-cashu"


def client_address(services: Services, request: Request) -> str:
    """The rate key challenges are counted against: the client's address as the trusted-proxy
    rules read it (net/client_ip.py), an IPv6 client by its /64."""
    return rate_key(services.clients.of(request.scope))


async def key_or_keyless(services: Services, request: Request) -> ApiKey | None:
    """The caller's live API key, or None for a keyless request that may pay per request.
    A key that is sent but bad is a 401; with pay per request off, no key is a 401 too."""
    raw = bearer_key(request)
    if raw:
        return await services.keys.authenticate(raw)
    if not services.pay402.enabled:
        require_key(request)
    return None


class Purchase:
    """Who pays for one request (here: an API key), and what the response says about it."""

    def __init__(self, buyer: Buyer, headers: dict[str, str] | None = None) -> None:
        self.buyer = buyer
        self.headers = headers or {}  # sent with the response, whole or streamed

    async def __aenter__(self) -> Purchase:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, FareboxError):
            extra = await self.failed()
            if extra:
                headers = list(getattr(exc, "headers", ()))
                exc.headers = [*headers, *extra.items()]  # type: ignore[attr-defined]
        elif exc is not None:
            self.dropped()  # the client left, or a bug: what the payment left is kept for it

    async def settled(self) -> dict[str, str]:
        """Headers for a whole response, once its request has settled."""
        return dict(self.headers)

    async def failed(self) -> dict[str, str]:
        """Headers for the error response of a request that failed after payment."""
        return {}

    async def trailer(self) -> bytes:
        """The final SSE event of a stream that ran to its end (empty: none)."""
        return b""

    def dropped(self) -> None:
        """The client left mid-stream (or the request died of something unexpected)."""

    async def stream(self, events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The events, then `trailer()`: after `data: [DONE]` in the same write (SDKs stop
        reading at [DONE]; a raw client reads on), or at the end of a stream without one."""
        finished = False
        held: bytes | None = None
        try:
            async for chunk in events:
                if held is not None:
                    yield held
                    held = None
                if chunk.endswith(DONE_EVENT):
                    held = chunk
                    continue
                yield chunk
            finished = True
        finally:
            if not finished:
                aclose = getattr(events, "aclose", None)
                if aclose is not None:
                    await aclose()
                self.dropped()
        yield (held or b"") + await self.trailer()


def _payment_event(fields: dict[str, object]) -> bytes:
    """A data-only SSE event (Anthropic's SDK skips events without an event name)."""
    return data_event({"object": "farebox.payment", **fields})


class CredentialPurchase(Purchase):
    """A paid L402 or Payment credential: what is left on it goes with every response."""

    def __init__(self, buyer: Buyer, headers: dict[str, str], ledger: Ledger, until: float) -> None:
        super().__init__(buyer, headers)
        self.ledger = ledger
        self.until = until

    async def _left(self, settle: bool) -> dict[str, str]:
        if settle:
            await self.ledger.flush()
        balance = await self.ledger.balance(self.buyer.account_id)
        left = balance.available if balance is not None else 0
        return {
            "x-farebox-credential-balance": format_usd(max(left, 0)),
            "x-farebox-credential-expires": rfc3339(self.until),
        }

    async def opened(self) -> None:
        """For a stream: what is left without its hold (the unused part comes back at its end)."""
        self.headers.update(await self._left(settle=False))

    async def settled(self) -> dict[str, str]:
        return {**self.headers, **await self._left(settle=True)}

    async def failed(self) -> dict[str, str]:
        return await self._left(settle=True)

    async def trailer(self) -> bytes:
        left = await self._left(settle=True)
        return _payment_event(
            {
                "credential_balance_usd": left["x-farebox-credential-balance"],
                "credential_expires": left["x-farebox-credential-expires"],
            }
        )


class CashuPurchase(Purchase):
    """A Cashu token swapped into the receipt's account: what the request leaves comes back."""

    def __init__(self, buyer: Buyer, cashu: CashuPayments, receipt_id: str) -> None:
        super().__init__(buyer, {"x-cashu-change-id": receipt_id})
        self.cashu = cashu
        self.receipt_id = receipt_id

    async def _change(self) -> Change:
        return await self.cashu.settled_change(self.receipt_id)

    async def settled(self) -> dict[str, str]:
        return {**self.headers, **change_headers(await self._change())}

    async def failed(self) -> dict[str, str]:
        return dict(change_headers(await self._change()))

    async def trailer(self) -> bytes:
        change = await self._change()
        return _payment_event(
            {
                "cashu_change": change.token,
                "change_sats": change.sats,
                "change_id": change.receipt_id,
                "change_ready": change.ready,
            }
        )

    def dropped(self) -> None:
        self.cashu.change_soon(self.receipt_id)


async def purchase_for(
    services: Services, request: Request, key: ApiKey | None, offer: Offer
) -> Purchase:
    """Who pays for this validated, priced request. A keyless one pays with X-Cashu, with a
    paid credential, or gets a 402 with a fresh challenge."""
    payer = services.media.payer
    if key is not None:
        return Purchase(payer.for_key(key))
    if offer.price_nanos <= 0:
        raise Unauthorized(
            "This model is free of charge, so it needs an API key instead of a payment: "
            "create one with POST /accounts/create."
        )
    pay402 = services.pay402
    client = client_address(services, request)
    limit = offer.price_nanos if offer.worst_case else None

    async def refused_for(account_id: str) -> FareboxError:
        balance = await services.ledger.balance(account_id)
        left = balance.available if balance is not None else 0
        return await pay402.challenge(
            offer, client, pay402.used_message(offer, left), "invalid-challenge"
        )

    token = request.headers.get(CASHU_HEADER)
    if token and services.cashu.enabled:
        receipt = await services.cashu.redeem(token, offer)
        # The token paid at least the price, so its hold cannot be refused; were it, the answer
        # is a plain 402 carrying the whole payment back in X-Cashu, not a challenge beside it.
        buyer = payer.for_account(receipt.account_id, "cashu", None, limit=limit)
        return CashuPurchase(buyer, services.cashu, receipt.id)
    paid = await pay402.redeem(request.headers.get("authorization"), offer, client)

    async def refused() -> FareboxError:
        return await refused_for(paid.account_id)

    headers = {"payment-receipt": paid.receipt, "cache-control": "private"} if paid.receipt else {}
    buyer = payer.for_account(paid.account_id, paid.scheme, refused, limit=limit)
    return CredentialPurchase(buyer, headers, services.ledger, paid.until)
