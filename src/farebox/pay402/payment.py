"""The `Payment` HTTP authentication scheme (draft-httpauth-payment-00), method `lightning`,
intent `charge` (draft-lightning-charge-00).

Challenge: `WWW-Authenticate: Payment id, realm, method="lightning", intent="charge",
request=<base64url(JCS {amount, currency:"sat", description, methodDetails:{invoice,
paymentHash, network}})>, expires=<RFC 3339>, opaque=<base64url(JCS {endpoint, price_nanos})>,
description`. The id is the draft's recommended HMAC-SHA256 over the seven positional slots
(realm|method|intent|request|expires|digest|opaque) under a key derived from the instance
secret: the server verifies a challenge it issued, on any replica, without storing it, and
`opaque` (which clients echo unchanged) carries the endpoint and price the credential is bound to.

Credential: `Authorization: Payment <base64url JSON {challenge: {echoed params}, payload:
{preimage}}>`. Clients echo `request` as received; some re-encode it, so the HMAC is recomputed
over the echoed strings and the values are decoded, never compared as encodings.

Receipt (success only): `Payment-Receipt: <base64url(JCS {method, challengeId, reference:
payment hash, status:"success", timestamp})>`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from farebox.pay402.encoding import (
    MAX_TOKEN_CHARS,
    DecodeError,
    b64url,
    b64url_decode,
    derive_key,
    jcs_b64url,
    json_object,
    parse_rfc3339,
    preimage_bytes,
    rfc3339,
)
from farebox.pay402.errors import CredentialRejected
from farebox.pay402.types import Claims, Invoice, Issued, Offer, Presented

NAME = "payment"
METHOD = "lightning"
INTENT = "charge"
ECHOED = ("id", "realm", "method", "intent", "request", "expires", "digest", "opaque")


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class PaymentScheme:
    name = NAME
    fixed_price_only = True  # the charge intent pays exactly the price, once

    def __init__(self, secret: str, realm: str) -> None:
        self._key = derive_key(secret, "payment challenge id")
        self.realm = realm

    def challenge_id(
        self, request: str, expires: str, opaque: str, digest: str = "", realm: str | None = None
    ) -> str:
        slots = [realm if realm is not None else self.realm, METHOD, INTENT, request]
        slots += [expires, digest, opaque]
        return b64url(hmac.new(self._key, "|".join(slots).encode(), hashlib.sha256).digest())

    def challenge_params(self, offer: Offer, invoice: Invoice) -> dict[str, str]:
        details: dict[str, str] = {"invoice": invoice.bolt11, "paymentHash": invoice.payment_hash}
        if invoice.network:
            details["network"] = invoice.network
        request = jcs_b64url(
            {
                "amount": str(invoice.sats),
                "currency": "sat",
                "description": offer.description,
                "methodDetails": details,
            }
        )
        opaque = jcs_b64url({"endpoint": offer.endpoint, "price_nanos": str(offer.price_nanos)})
        expires = rfc3339(invoice.expires_at)
        return {
            "id": self.challenge_id(request, expires, opaque),
            "realm": self.realm,
            "method": METHOD,
            "intent": INTENT,
            "request": request,
            "expires": expires,
            "opaque": opaque,
            "description": offer.description,
        }

    def challenge(self, offer: Offer, invoice: Invoice) -> Issued:
        params = self.challenge_params(offer, invoice)
        header = "Payment " + ", ".join(f"{name}={_quoted(v)}" for name, v in params.items())
        return Issued(header, {"id": params["id"]})

    def read(self, authorization: str) -> Presented | None:
        scheme, _, rest = authorization.strip().partition(" ")
        if scheme.lower() != "payment" or not rest.strip():
            return None
        return Presented(NAME, rest.strip())

    def verify(self, presented: Presented) -> Claims:
        if len(presented.raw) > MAX_TOKEN_CHARS:
            raise CredentialRejected("malformed-credential", "The Payment credential is too long.")
        try:
            credential = json_object(b64url_decode(presented.raw), "the credential")
            echo = _echo(credential.get("challenge"))
            payload = credential.get("payload")
            if not isinstance(payload, dict):
                raise DecodeError("the credential has no payload object")
            preimage = preimage_bytes(payload.get("preimage"))
        except DecodeError as exc:
            raise CredentialRejected(
                "malformed-credential", f"Bad Payment credential: {exc}."
            ) from None
        if echo.get("method") != METHOD or echo.get("intent") != INTENT:
            raise CredentialRejected(
                "invalid-challenge", 'This server takes method="lightning", intent="charge".'
            )
        expected = self.challenge_id(
            echo.get("request", ""),
            echo.get("expires", ""),
            echo.get("opaque", ""),
            echo.get("digest", ""),
            realm=echo.get("realm", ""),
        )
        if echo.get("realm") != self.realm or not hmac.compare_digest(
            expected.encode(), echo.get("id", "").encode()
        ):
            raise CredentialRejected(
                "invalid-challenge",
                "This challenge was not issued by this server, or was altered.",
            )
        try:  # issued by us (the HMAC holds), so these decode; a failure here is a bug's 402
            request = json_object(b64url_decode(echo["request"]), "the request")
            opaque = json_object(b64url_decode(echo["opaque"]), "opaque")
            details = request["methodDetails"]
            payment_hash = str(details["paymentHash"])
            claims = Claims(
                scheme=NAME,
                payment_id=payment_hash,
                endpoint=str(opaque["endpoint"]),
                price_nanos=int(opaque["price_nanos"]),
                sats=int(request["amount"]),
                expires_at=parse_rfc3339(echo["expires"]),
                challenge_id=echo["id"],
            )
        except (KeyError, TypeError, ValueError):
            raise CredentialRejected(
                "invalid-challenge", "This challenge does not name an invoice of this server."
            ) from None
        if not hmac.compare_digest(hashlib.sha256(preimage).hexdigest(), payment_hash):
            raise CredentialRejected(
                "invalid-preimage",
                "SHA-256 of the preimage does not match the challenge's payment hash.",
            )
        return claims

    @staticmethod
    def receipt(claims: Claims, now: float) -> str:
        return jcs_b64url(
            {
                "method": METHOD,
                "challengeId": claims.challenge_id or "",
                "reference": claims.payment_id,
                "status": "success",
                "timestamp": rfc3339(now),
            }
        )


def _echo(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise DecodeError("the credential has no challenge object")
    echo: dict[str, str] = {}
    for name in ECHOED:
        field = value.get(name)
        if field is None:
            continue
        if not isinstance(field, str):
            raise DecodeError(f"challenge.{name} must be a string")
        echo[name] = field
    for name in ("id", "realm", "method", "intent", "request", "expires", "opaque"):
        if not echo.get(name):
            raise DecodeError(f"challenge.{name} is missing")
    return echo
