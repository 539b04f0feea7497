"""Building the pay-per-request service from its settings and the payment backends."""

from __future__ import annotations

from farebox.db.database import Database
from farebox.net.ratelimit import MemoryRateStore, RateLimiter, RateRule
from farebox.pay402.config import Pay402Config
from farebox.pay402.l402 import L402Scheme
from farebox.pay402.payment import PaymentScheme
from farebox.pay402.service import PayPerRequest
from farebox.pay402.types import EcashOffer, Scheme
from farebox.payments.service import TopupService
from farebox.payments.types import Method


def build_pay_per_request(
    config: Pay402Config,
    db: Database,
    topups: TopupService,
    secret: str,
    cashu: EcashOffer | None = None,
) -> PayPerRequest:
    """Invoices come from the backend that serves Lightning top-ups (FAREBOX_LIGHTNING_BACKEND
    picks one when several are configured), at the same rate port; with neither that nor
    trusted Cashu mints there is no 402 flow."""
    offer = topups.offers.get(Method.LIGHTNING)
    schemes: list[Scheme] = [L402Scheme(secret, config.realm), PaymentScheme(secret, config.realm)]
    return PayPerRequest(
        db,
        offer.backend if offer is not None else None,
        topups.rates,
        schemes,
        # Each challenge mints a real invoice: at most `challenges_per_minute` per client, with
        # as many at once (the shared per-client limiter of net/ratelimit.py).
        RateLimiter(
            "payment challenge",
            RateRule(config.challenges_per_minute, config.challenges_per_minute),
            MemoryRateStore(),
        ),
        config,
        cashu,
    )
