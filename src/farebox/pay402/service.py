"""Pay per request: challenge a keyless request, redeem the credential it comes back with.

Order of work for one keyless request (the api layer drives it, see api/pay402.py):
1. The request is validated and priced first (an `Offer`); an invalid one gets its 400 and no
   invoice, so nobody pays for a 400.
2. No credential: the client (a rate key of its address) is checked against the challenge limit (each challenge
   mints a real invoice), the price is converted at the rate port and rounded up to whole sats,
   the Lightning backend issues the invoice, and every registered scheme (L402, and the
   Payment scheme for fixed prices) adds its challenge to one 402; with trusted mints, Cashu
   adds `X-Cashu: creqA…` (cashu/service.py redeems what comes back).
3. A credential: the scheme that reads it verifies it (signature or HMAC, then the preimage);
   it must be for this endpoint and priced at least this request's price. On first
   presentation (before the challenge expires) it is credited once to its own ledger account
   (store.credit_once); later presentations need no expiry, only the retry window.
4. The caller then holds the price on that account like any customer's (Buyer.open): if the
   balance is gone (used, or 50 replays racing) the hold is refused and the caller gets a
   fresh challenge. A voided hold (the upstream failed) leaves the money there for a retry.
Any rejection answers 402 with a fresh challenge, as the Payment draft requires.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from farebox import optional
from farebox.db.database import Database
from farebox.money import NANOS_PER_USD, format_usd
from farebox.net.ratelimit import RateLimiter
from farebox.pay402 import store
from farebox.pay402.config import Pay402Config
from farebox.pay402.errors import CredentialRejected, PaymentRequired
from farebox.pay402.payment import PaymentScheme
from farebox.pay402.types import Claims, EcashOffer, Invoice, Offer, Scheme
from farebox.payments.amounts import SATS_PER_BTC, quote
from farebox.payments.errors import PaymentBackendError
from farebox.payments.rates import RateSource
from farebox.payments.types import Currency, InvoiceRequest, Method, PaymentBackend

log = logging.getLogger("farebox.pay402")

NETWORKS = {"bc": "mainnet", "bcrt": "regtest", "tbs": "signet"}


@dataclass(frozen=True, slots=True)
class Paid:
    """A redeemed credential: the ledger account to charge, and the receipt header if any."""

    account_id: str
    scheme: str
    claims: Claims
    receipt: str | None
    until: float  # the credential serves until then (its balance lifetime, or retry window)


class PayPerRequest:
    def __init__(
        self,
        db: Database,
        backend: PaymentBackend | None,
        rates: RateSource,
        schemes: Sequence[Scheme],
        limiter: RateLimiter,
        config: Pay402Config,
        cashu: EcashOffer | None = None,
    ) -> None:
        self.db = db
        self.backend = backend
        self.rates = rates
        self.schemes = tuple(schemes)
        self.limiter = limiter
        self.config = config
        self.cashu = cashu if cashu is not None and cashu.enabled else None
        # BOLT11 decoding and macaroons are loaded with a Lightning backend, before any request
        # needs them
        self._bolt11 = optional.bolt11() if backend is not None else None
        if backend is not None:
            optional.pymacaroons()

    @property
    def lightning(self) -> bool:
        return self.backend is not None and bool(self.schemes)

    @property
    def enabled(self) -> bool:
        """Keyless requests are challenged only with a way to pay: a Lightning backend to issue
        invoices, or trusted Cashu mints."""
        return self.config.enabled and (self.lightning or self.cashu is not None)

    # -- challenges --------------------------------------------------------------------------

    async def challenge(
        self, offer: Offer, client: str, reason: str | None = None, code: str | None = None
    ) -> PaymentRequired:
        """A 402 with a fresh invoice and every scheme's challenge (returned, for raising)."""
        await self.limiter.check(client)
        body: dict[str, object] = {
            "price_usd": format_usd(offer.price_nanos),
            "endpoint": offer.endpoint,
        }
        headers: list[tuple[str, str]] = []
        ways: list[str] = []
        price = f"${format_usd(offer.price_nanos)}"
        if self.lightning:
            invoice = await self._invoice(offer)
            schemes = [s for s in self.schemes if not (offer.worst_case and s.fixed_price_only)]
            issued = [scheme.challenge(offer, invoice) for scheme in schemes]
            body.update(
                price_sats=invoice.sats,
                invoice=invoice.bolt11,
                payment_hash=invoice.payment_hash,
                expires_at=int(invoice.expires_at),
            )
            for scheme, part in zip(schemes, issued, strict=True):
                body[scheme.name] = part.body
            headers += [("WWW-Authenticate", part.header) for part in issued]
            answers = " or ".join(_ANSWERS[scheme.name] for scheme in schemes)
            price += f" ({invoice.sats} sats)"
            ways.append(
                "Pay the Lightning invoice, then send the same request again with "
                f"{answers} (the challenges are in WWW-Authenticate)."
            )
        if self.cashu is not None:
            creq, ecash = await self.cashu.payment_request(offer)
            headers.append(("X-Cashu", creq))
            body["cashu"] = ecash
            ways.append(
                f"Or send it again with 'X-Cashu: cashuB…', a token of at least {ecash['amount']} "
                f"sat from a mint in X-Cashu's payment request; change comes back as a token."
            )
        lead = f"{reason} " if reason else ""
        message = (
            f"{lead}Payment required: {offer.description} costs {price}"
            f"{' at most' if offer.worst_case else ''}. {' '.join(ways)} {self._terms(offer)} "
            "Or send an API key (POST /accounts/create)."
        )
        return PaymentRequired(
            message, headers, code=(code or "payment_required").replace("-", "_"), **body
        )

    def _terms(self, offer: Offer) -> str:
        if offer.worst_case:
            days = self.config.chat_balance_s / 86_400
            return (
                "What the request does not use stays on the L402 token as a balance for later "
                f"requests to {offer.endpoint} for {days:g} days (the X-Farebox-Credential-"
                "Balance header shows what is left)."
            )
        retry_h = self.config.retry_s / 3600
        return (
            "One payment buys this request once; if it fails upstream, what was not delivered "
            f"stays on the credential for a retry on {offer.endpoint} for {retry_h:g} h."
        )

    async def _invoice(self, offer: Offer) -> Invoice:
        assert self.backend is not None
        q = quote(
            Decimal(offer.price_nanos) / NANOS_PER_USD, Currency.USD, await self.rates.btc_usd()
        )
        created = await self.backend.create_invoice(
            InvoiceRequest(
                reference="p402_" + secrets.token_hex(10),
                method=Method.LIGHTNING,
                amount=Decimal(q.sats) / SATS_PER_BTC,
                currency=Currency.BTC,
                sats=q.sats,
                expiry_s=self.config.expiry_s,
                memo=f"farebox: {offer.description}"[:200],
            )
        )
        if not created.bolt11:
            raise PaymentBackendError("The Lightning backend returned no BOLT11 invoice.")
        bolt11 = self._bolt11 or optional.bolt11()
        try:
            decoded = bolt11.decode(created.bolt11)
        except (bolt11.exceptions.Bolt11Exception, ValueError, TypeError) as exc:
            raise PaymentBackendError(
                "The Lightning backend returned an unreadable invoice."
            ) from exc
        if decoded.amount_msat is None or int(decoded.amount_msat) != q.sats * 1000:
            raise PaymentBackendError(
                f"The Lightning backend's invoice is not for {q.sats} sats; nothing was offered."
            )
        expires = min(float(decoded.expiry_time), created.expires_at or float("inf"))
        return Invoice(
            bolt11=created.bolt11,
            payment_hash=decoded.payment_hash.lower(),
            sats=q.sats,
            expires_at=min(expires, time.time() + self.config.expiry_s),
            network=NETWORKS.get(decoded.currency),
        )

    # -- redeeming ---------------------------------------------------------------------------

    def presented(self, authorization: str | None) -> bool:
        """Whether `authorization` is a credential in one of our schemes."""
        return bool(authorization) and any(s.read(authorization or "") for s in self.schemes)

    async def redeem(self, authorization: str | None, offer: Offer, client: str) -> Paid:
        """The paid account for this request, or raises PaymentRequired with a fresh challenge."""
        found = [
            (scheme, presented)
            for scheme in self.schemes
            if (presented := scheme.read(authorization or "")) is not None
        ]
        if not found:
            raise await self.challenge(offer, client)
        scheme, presented = found[0]
        try:
            claims = scheme.verify(presented)
            credited = await self._credit(claims, offer)
        except CredentialRejected as rejected:
            raise await self.challenge(offer, client, rejected.message, rejected.code) from None
        receipt = PaymentScheme.receipt(claims, time.time()) if claims.challenge_id else None
        return Paid(credited.account_id, claims.scheme, claims, receipt, credited.retry_until)

    async def _credit(self, claims: Claims, offer: Offer) -> store.Credited:
        if claims.endpoint != offer.endpoint:
            raise CredentialRejected(
                "verification-failed",
                f"This credential pays for {claims.endpoint}, not {offer.endpoint}.",
            )
        if offer.price_nanos > claims.price_nanos and not offer.worst_case:
            raise CredentialRejected(
                "payment-insufficient",
                f"This credential pays for ${format_usd(claims.price_nanos)}; this request costs "
                f"${format_usd(offer.price_nanos)}.",
            )
        now = time.time()
        credited = await self.db.read(store.find, claims.payment_id)
        if credited is None:
            if now >= claims.expires_at:
                raise CredentialRejected(
                    "payment-expired",
                    "This challenge expired before its credential was presented.",
                )
            credited = await self.db.write(
                store.credit_once, claims, now, self.config.keep_s(offer.worst_case)
            )
            if credited.credited_now:
                log.info(
                    "402 payment %s… credited $%s (%s)",
                    claims.payment_id[:12],
                    format_usd(credited.price_nanos),
                    claims.scheme,
                )
        if now >= credited.retry_until:
            raise CredentialRejected(
                "invalid-challenge", "This credential's retry window has ended."
            )
        return credited

    @staticmethod
    def used_message(offer: Offer, left_nanos: int = 0) -> str:
        if offer.worst_case:
            return (
                f"This credential has ${format_usd(max(left_nanos, 0))} left, which cannot pay "
                f"for this request's prompt and a first output token."
            )
        return (
            f"This credential is used up: what is left on it cannot pay for this request on "
            f"{offer.endpoint} (it has already paid for its request)."
        )


_ANSWERS = {
    "l402": "'Authorization: L402 <macaroon>:<preimage>'",
    "payment": "'Authorization: Payment <credential>'",
}
