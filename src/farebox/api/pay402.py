"""Paid endpoints without an API key: the HTTP edge of the 402 flow (pay402/ does the work).

A route reads the caller's key (`key_or_keyless`: a bad key is a 401, no key is a keyless
request when pay per request is on), validates and prices the request, then asks `buyer_for`
who pays: the key's account, or, with no key, the account of a paid credential, which raises
a 402 with a fresh challenge until one is presented. Any paid endpoint plugs in the same way:

    key = await key_or_keyless(services, request)
    order = ...validate and price the request (a 400 here costs nothing)...
    buyer, headers = await buyer_for(services, request, key, Offer(ENDPOINT, price, "what"))
    result = ...serve it, holding the price with `await buyer.open(price)`...
    # add `headers` (Payment-Receipt) to the success response
"""

from __future__ import annotations

from starlette.requests import Request

from farebox.api.requests import bearer_key, require_key
from farebox.api.services import Services
from farebox.errors import FareboxError, Unauthorized
from farebox.keys.store import ApiKey
from farebox.modalities.paid import Buyer
from farebox.net.client_ip import rate_key
from farebox.pay402.types import Offer


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


async def buyer_for(
    services: Services, request: Request, key: ApiKey | None, offer: Offer
) -> tuple[Buyer, dict[str, str]]:
    """Who pays for this validated, priced request, and the headers its success carries."""
    payer = services.media.payer
    if key is not None:
        return payer.for_key(key), {}
    if offer.price_nanos <= 0:
        raise Unauthorized(
            "This model is free of charge, so it needs an API key instead of a payment: "
            "create one with POST /accounts/create."
        )
    pay402 = services.pay402
    client = client_address(services, request)
    paid = await pay402.redeem(request.headers.get("authorization"), offer, client)

    async def refused() -> FareboxError:
        return await pay402.challenge(
            offer, client, pay402.used_message(offer), "invalid-challenge"
        )

    headers = {"payment-receipt": paid.receipt, "cache-control": "private"} if paid.receipt else {}
    return payer.for_account(paid.account_id, paid.scheme, refused), headers
