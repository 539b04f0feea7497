"""Credentials that must buy nothing: forged, tampered, wrong preimage, expired, from another
server, malformed; replays racing; and the per-client challenge limit. Each gets a 402 with a
fresh challenge (or a 429), moves no money, and leaves the ledger clean."""

from __future__ import annotations

import base64
import os
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from pymacaroons.serializers import BinarySerializer

from farebox.net.ratelimit import MemoryRateStore, RateLimiter, RateRule
from farebox.pay402.l402 import L402Scheme
from farebox.pay402.payment import PaymentScheme
from farebox.pay402.types import Invoice, Offer
from farebox.payments.types import Currency, InvoiceRequest, Method

from pay402_support import (
    GENERATIONS,
    LOW,
    MEDIUM,
    b64url_json,
    challenges,
    credential_nanos,
    dev_pay,
    history,
    l402,
    pay_l402,
    payment_credential,
    payment_hash,
    post,
    revenue,
    unb64url_json,
)
from support import Gateway

LOW_OFFER = Offer(GENERATIONS, 10_000_000, "POST /v1/images/generations (1 image from sim-image)")


def paid_invoice(gw: Gateway, expires_in: float = 600) -> tuple[Invoice, str]:
    """A real dev-wallet invoice for 10 sats, paid: (invoice, preimage)."""
    from bolt11 import decode

    wallet = gw.services.topups.backends["devwallet"]
    created = gw.loop.run(
        wallet.create_invoice(
            InvoiceRequest("t", Method.LIGHTNING, Decimal("0.0000001"), Currency.BTC, 10, 600, "t")
        )
    )
    assert created.bolt11 is not None
    preimage = dev_pay(gw, created.bolt11)
    invoice = Invoice(
        created.bolt11, decode(created.bolt11).payment_hash, 10, time.time() + expires_in, "regtest"
    )
    return invoice, preimage


def assert_refused(gw: Gateway, auth: str, code: str, body: dict[str, object] = LOW) -> None:
    before = revenue(gw)
    r = post(gw, body, auth)
    assert r.status_code == 402, r.text
    assert r.json()["error"]["code"] == code, r.json()["error"]
    assert set(challenges(r)) == {"L402", "Payment"}  # a fresh challenge to pay instead
    assert r.headers["cache-control"] == "no-store"
    assert revenue(gw) == before


def test_wrong_preimage(pay_gw: Gateway) -> None:
    r = post(pay_gw, LOW)
    mac, _invoice = l402(r)
    assert_refused(pay_gw, f"L402 {mac}:{os.urandom(32).hex()}", "invalid_preimage")
    params = challenges(r)["Payment"]
    assert_refused(pay_gw, payment_credential(params, os.urandom(32).hex()), "invalid_preimage")
    assert credential_nanos(pay_gw, payment_hash(r)) is None


def test_tampered_macaroon(pay_gw: Gateway) -> None:
    r = post(pay_gw, LOW)
    mac, invoice = l402(r)
    preimage = dev_pay(pay_gw, invoice)
    raw = base64.b64decode(mac)
    assert b"farebox_price_nanos=10000000" in raw
    dearer = raw.replace(b"farebox_price_nanos=10000000", b"farebox_price_nanos=99000000")
    forged = base64.b64encode(dearer).decode()
    assert_refused(pay_gw, f"L402 {forged}:{preimage}", "verification_failed")
    flipped = bytearray(raw)
    flipped[-1] ^= 1  # the signature
    assert_refused(
        pay_gw,
        f"L402 {base64.b64encode(bytes(flipped)).decode()}:{preimage}",
        "verification_failed",
    )
    # a caveat the holder adds (attenuation) must be one we understand ...
    macaroon = BinarySerializer().deserialize_raw(raw)
    unknown = macaroon.copy()
    unknown.add_first_party_caveat("admin=true")
    attenuated = base64.b64encode(BinarySerializer().serialize_raw(unknown)).decode()
    assert_refused(pay_gw, f"L402 {attenuated}:{preimage}", "verification_failed")
    # ... and one that only narrows it is fine: the genuine credential still buys its request
    narrowed = macaroon.copy()
    narrowed.add_first_party_caveat(f"valid_until={int(time.time()) + 60}")
    good = base64.b64encode(BinarySerializer().serialize_raw(narrowed)).decode()
    assert post(pay_gw, LOW, f"L402 {good}:{preimage}").status_code == 200
    assert history(pay_gw, payment_hash(r)) == [("l402", "image", "sim-image", 10_000_000)]


@pytest.mark.parametrize(
    "caveat",
    ["valid_until=\u00b2", "valid_until=\u00b2\u00b3", "valid_until=\u0663"],
    ids=["superscript-two", "superscripts", "arabic-three"],
)
def test_caveat_with_non_ascii_digits_is_refused(pay_gw: Gateway, caveat: str) -> None:
    """isdigit() accepts "²" and int() refuses it: a valid_until caveat of "²" added by the
    holder (caveats are read before the signature is checked) was a 500, and int() read "٣"
    as 3. Caveat numbers are ASCII digits."""
    r = post(pay_gw, LOW)
    mac, invoice = l402(r)
    preimage = dev_pay(pay_gw, invoice)
    macaroon = BinarySerializer().deserialize_raw(base64.b64decode(mac)).copy()
    macaroon.add_first_party_caveat(caveat)
    odd = base64.b64encode(BinarySerializer().serialize_raw(macaroon)).decode()
    assert_refused(pay_gw, f"L402 {odd}:{preimage}", "verification_failed")
    assert credential_nanos(pay_gw, payment_hash(r)) is None


def test_macaroon_from_another_server(pay_gw: Gateway) -> None:
    invoice, preimage = paid_invoice(pay_gw)
    other = L402Scheme("another server's secret", "farebox")
    mac = other.mint(LOW_OFFER, invoice)
    assert_refused(pay_gw, f"L402 {mac}:{preimage}", "verification_failed")
    params = PaymentScheme("another server's secret", "farebox").challenge_params(
        LOW_OFFER, invoice
    )
    assert_refused(pay_gw, payment_credential(params, preimage), "invalid_challenge")
    assert credential_nanos(pay_gw, invoice.payment_hash) is None


def test_expired_challenge(pay_gw: Gateway) -> None:
    invoice, preimage = paid_invoice(pay_gw, expires_in=-1)
    l402_scheme, payment_scheme = pay_gw.services.pay402.schemes
    mac = l402_scheme.mint(LOW_OFFER, invoice)  # genuinely ours, but its valid_until has passed
    assert_refused(pay_gw, f"L402 {mac}:{preimage}", "payment_expired")
    params = payment_scheme.challenge_params(LOW_OFFER, invoice)
    assert_refused(pay_gw, payment_credential(params, preimage), "payment_expired")
    assert credential_nanos(pay_gw, invoice.payment_hash) is None


def test_altered_payment_challenge(pay_gw: Gateway) -> None:
    r = post(pay_gw, MEDIUM)
    params = challenges(r)["Payment"]
    preimage = dev_pay(pay_gw, challenges(r)["L402"]["invoice"])
    cheaper = unb64url_json(params["opaque"])
    cheaper["price_nanos"] = "990000000"  # claim it paid for more
    altered = {**params, "opaque": b64url_json(cheaper)}
    assert_refused(pay_gw, payment_credential(altered, preimage), "invalid_challenge", MEDIUM)
    later = {**params, "expires": "2099-01-01T00:00:00Z"}
    assert_refused(pay_gw, payment_credential(later, preimage), "invalid_challenge", MEDIUM)
    other_realm = {**params, "realm": "evil.example"}
    assert_refused(pay_gw, payment_credential(other_realm, preimage), "invalid_challenge", MEDIUM)
    # the untouched one still works
    assert post(pay_gw, MEDIUM, payment_credential(params, preimage)).status_code == 200


@pytest.mark.parametrize(
    "auth",
    [
        "L402 nonsense",
        "L402 :" + "00" * 32,
        "L402 AgEEbHNhdA:" + "00" * 32,  # truncated macaroon
        "LSAT " + "A" * 9000 + ":" + "00" * 32,
        "L402 " + base64.b64encode(b"\x02" * 40).decode() + ":zz",
        "Payment !!!",
        "Payment " + base64.urlsafe_b64encode(b"not json").decode(),
        "Payment " + b64url_json([1, 2]),
        "Payment " + b64url_json({"challenge": {"id": "x"}, "payload": {"preimage": "00"}}),
        "Payment " + b64url_json({"challenge": "x", "payload": 1}),
    ],
)
def test_malformed_credentials(pay_gw: Gateway, auth: str) -> None:
    r = post(pay_gw, LOW, auth)
    assert r.status_code == 402, r.text
    assert r.json()["error"]["code"] == "malformed_credential", r.json()["error"]
    assert set(challenges(r)) == {"L402", "Payment"}


def test_unknown_authorization_scheme_is_challenged(pay_gw: Gateway) -> None:
    r = post(pay_gw, LOW, "Basic dXNlcjpwYXNz")
    assert r.status_code == 402
    assert r.json()["error"]["code"] == "payment_required"


@pytest.mark.slow  # concurrency or timeouts: seconds each
def test_fifty_concurrent_replays_are_served_once(pay_gw: Gateway) -> None:
    before = revenue(pay_gw)
    r = post(pay_gw, MEDIUM)
    auth = pay_l402(pay_gw, r)
    with ThreadPoolExecutor(max_workers=50) as pool:
        codes = list(pool.map(lambda _: post(pay_gw, MEDIUM, auth).status_code, range(50)))
    assert sorted(codes) == [200] + [402] * 49, codes
    ph = payment_hash(r)
    assert history(pay_gw, ph) == [("l402", "image", "sim-image", 40_000_000)]
    assert credential_nanos(pay_gw, ph) == (0, 0)
    assert revenue(pay_gw) - before == 40_000_000


@pytest.mark.slow  # concurrency or timeouts: seconds each
def test_fifty_concurrent_first_presentations_in_both_schemes_credit_once(pay_gw: Gateway) -> None:
    r = post(pay_gw, MEDIUM)
    mac, invoice = l402(r)
    preimage = dev_pay(pay_gw, invoice)
    forms = [f"L402 {mac}:{preimage}", payment_credential(challenges(r)["Payment"], preimage)]
    with ThreadPoolExecutor(max_workers=50) as pool:
        codes = list(pool.map(lambda i: post(pay_gw, MEDIUM, forms[i % 2]).status_code, range(50)))
    assert codes.count(200) == 1, codes
    ph = payment_hash(r)
    assert len(history(pay_gw, ph)) == 1
    assert credential_nanos(pay_gw, ph) == (0, 0)


def test_challenges_are_rate_limited_per_client(pay_gw: Gateway) -> None:
    service = pay_gw.services.pay402
    limiter = service.limiter
    service.limiter = RateLimiter("payment challenge", RateRule(2, 2), MemoryRateStore())
    try:
        codes = [post(pay_gw, LOW).status_code for _ in range(3)]
        limited = post(pay_gw, LOW)
    finally:
        service.limiter = limiter
    assert codes == [402, 402, 429]
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert "www-authenticate" not in limited.headers
    assert int(limited.headers["retry-after"]) >= 1
