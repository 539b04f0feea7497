"""Lightning top-ups through a real LNbits (FakeWallet), paid from a second LNbits wallet."""

from __future__ import annotations

import json
import time

from bolt11 import decode

from farebox.payments.invoices import topup_transfer_id

from lnbits_support import LNbitsServer, LNbitsWallet
from payments_support import assert_clean, bearer, create_topup, topup_status, topup_transfers
from support import NANOS, Gateway


def wait_for_balance(gw: Gateway, credit_id: str, want: int, timeout: float = 15) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and gw.nanos(credit_id)[0] != want:
        time.sleep(0.1)
    assert gw.nanos(credit_id) == (want, 0)


def test_create_pay_from_second_wallet_credited_once(
    lnbits_gateway: tuple[Gateway, LNbitsWallet], lnbits: LNbitsServer, lnbits_payer: LNbitsWallet
) -> None:
    gw, wallet = lnbits_gateway
    credit_id, key = gw.create_account()
    r = create_topup(gw, bearer(key), body={"amount": 2100, "currency": "SATS"})
    assert r.status_code == 201, r.text
    inv = r.json()
    assert inv["amount_usd"] == 2.1
    decoded = decode(inv["bolt11"])
    assert decoded.amount_msat == 2_100_000
    assert topup_status(gw, bearer(key), inv["invoice_id"]).json()["status"] == "pending"
    before = lnbits.balance_msat(wallet)

    paid = lnbits.pay(lnbits_payer, inv["bolt11"])
    assert paid["payment_hash"] == decoded.payment_hash
    wait_for_balance(gw, credit_id, 2_100_000_000)  # LNbits' webhook did it (the poller is off)
    assert lnbits.balance_msat(wallet) == before + 2_100_000

    for _ in range(3):
        assert topup_status(gw, bearer(key), inv["invoice_id"]).json()["status"] == "paid"
    gw.loop.run(gw.services.topups.poll_once())
    assert gw.nanos(credit_id) == (2_100_000_000, 0)
    assert topup_transfers(gw, credit_id) == [
        (topup_transfer_id("lnbits", decoded.payment_hash), 2_100_000_000)
    ]
    assert_clean(gw)


def test_usd_topup_status_call_credits_without_webhook(
    lnbits_gateway: tuple[Gateway, LNbitsWallet], lnbits: LNbitsServer, lnbits_payer: LNbitsWallet
) -> None:
    gw, _wallet = lnbits_gateway
    credit_id, key = gw.create_account()
    inv = create_topup(gw, bearer(key), body={"amount": "3.00", "currency": "USD"}).json()
    assert inv["amount_sats"] == 3000
    # Forget the webhook: a status call alone must find the payment.
    topups = gw.services.topups
    lnbits.pay(lnbits_payer, inv["bolt11"])
    status = topup_status(gw, bearer(key), inv["invoice_id"]).json()
    assert status["status"] == "paid"
    wait_for_balance(gw, credit_id, 3 * NANOS)
    assert topups is gw.services.topups
    assert_clean(gw)


def test_unsigned_lnbits_webhook_only_triggers_a_check(
    lnbits_gateway: tuple[Gateway, LNbitsWallet],
) -> None:
    gw, _wallet = lnbits_gateway
    credit_id, key = gw.create_account()
    inv = create_topup(gw, bearer(key), body={"amount": 1000, "currency": "SATS"}).json()
    payment_hash = decode(inv["bolt11"]).payment_hash
    forged = json.dumps(json.dumps({"payment_hash": payment_hash, "status": "success"}))
    with gw.client() as c:
        r = c.post("/topup/webhook/lnbits", content=forged)
        assert r.status_code == 200 and r.json()["status"] == "pending"
        unknown = json.dumps({"payment_hash": "ab" * 32})
        assert c.post("/topup/webhook/lnbits", content=unknown).status_code == 404
        assert c.post("/topup/webhook/lnbits", content=b"{}").status_code == 400
    assert gw.nanos(credit_id) == (0, 0)
    assert_clean(gw)
