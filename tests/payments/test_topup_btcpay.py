"""BTCPay Server (Greenfield) against the contract fake: every method, signed webhooks,
redeliveries, forged deliveries, the reconciler, and the expired/underpaid/overpaid policy."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest
from bolt11 import decode

from farebox.payments.btcpay import BTCPay
from farebox.payments.invoices import topup_transfer_id

from btcpay_fake import BTCPayFake
from payments_support import (
    BTC_USD,
    BTCPAY_KEY,
    BTCPAY_STORE,
    assert_clean,
    bearer,
    create_topup,
    topup_status,
    topup_transfers,
)
from support import NANOS, Gateway

PAYMENT_METHOD_IDS = {
    "btc-lightning": "BTC-LN",
    "btc": "BTC-CHAIN",
    "ltc": "LTC-CHAIN",
    "lbtc": "LBTC-CHAIN",
    "xmr": "XMR-CHAIN",
}


def open_invoice(
    gw: Gateway, key: str, method: str = "btc-lightning", amount: object = 10, currency: str = "USD"
) -> dict[str, object]:
    r = create_topup(gw, bearer(key), method, body={"amount": amount, "currency": currency})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_the_top_up_request_id_reaches_btcpay(btcpay_gateway: Gateway, btcpay: BTCPayFake) -> None:
    """For the operator's logs: BTCPay's side of a top-up carries the id the customer got."""
    _, key = btcpay_gateway.create_account()
    r = create_topup(
        btcpay_gateway, bearer(key), "btc-lightning", body={"amount": 5, "currency": "USD"}
    )
    assert r.status_code == 201, r.text
    assert r.headers["x-request-id"] in btcpay.request_ids


@pytest.mark.parametrize("method", list(PAYMENT_METHOD_IDS))
def test_each_method_created_settled_by_webhook_credits_once(
    btcpay_gateway: Gateway, btcpay: BTCPayFake, method: str
) -> None:
    credit_id, key = btcpay_gateway.create_account()
    inv = open_invoice(btcpay_gateway, key, method, amount=25, currency="USD")

    sent = btcpay.create_requests[-1]
    assert sent["amount"] == "25" and sent["currency"] == "USD"
    assert sent["checkout"]["paymentMethods"] == [PAYMENT_METHOD_IDS[method]]
    assert sent["metadata"]["orderId"] == inv["invoice_id"]
    fake = btcpay.find(str(inv["invoice_id"]))
    assert inv["checkout_url"] == f"{btcpay.base_url}/i/{fake.id}"
    if method == "btc-lightning":
        assert inv["bolt11"] == inv["payment_request"]
        assert decode(str(inv["bolt11"])).amount_msat == 25_000_000  # $25 at $100k/BTC
    else:
        assert inv["bolt11"] is None and inv["address"]
        assert str(inv["payment_uri"]).split(":")[0] in (
            "bitcoin",
            "litecoin",
            "liquidnetwork",
            "monero",
        )
        assert inv["amount_due"] == fake.methods[0]["amount"]
    assert inv["amount_usd"] == 25.0 and inv["status"] == "pending"

    btcpay.settle(fake)
    body = btcpay.event(fake, "InvoiceSettled")
    r = btcpay.deliver(body)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "paid"
    assert btcpay_gateway.nanos(credit_id) == (25 * NANOS, 0)
    # the same delivery again, and a redelivery from BTCPay's UI: still once
    assert btcpay.deliver(body).status_code == 200
    assert btcpay.deliver(btcpay.redelivery(body)).status_code == 200
    assert btcpay_gateway.nanos(credit_id) == (25 * NANOS, 0)
    assert topup_transfers(btcpay_gateway, credit_id) == [
        (topup_transfer_id("btcpay", fake.id), 25 * NANOS)
    ]
    status = topup_status(btcpay_gateway, bearer(key), str(inv["invoice_id"])).json()
    assert status["status"] == "paid" and status["credited_usd"] == 25.0
    by_btcpay_id = topup_status(btcpay_gateway, bearer(key), fake.id)  # PPQ's path takes it too
    assert by_btcpay_id.json()["invoice_id"] == inv["invoice_id"]
    assert_clean(btcpay_gateway)


def test_btc_denominated_invoice_fixes_usd_at_creation(
    btcpay_gateway: Gateway, btcpay: BTCPayFake
) -> None:
    credit_id, key = btcpay_gateway.create_account()
    inv = open_invoice(btcpay_gateway, key, "btc", amount="0.0001", currency="BTC")
    assert btcpay.create_requests[-1]["currency"] == "BTC"
    assert btcpay.create_requests[-1]["amount"] == "0.0001"
    assert inv["amount_usd"] == 10.0
    fake = btcpay.find(str(inv["invoice_id"]))
    btcpay.settle(fake)
    assert btcpay.deliver(btcpay.event(fake, "InvoiceSettled")).status_code == 200
    assert btcpay_gateway.nanos(credit_id) == (10 * NANOS, 0)
    assert_clean(btcpay_gateway)


@pytest.mark.slow  # concurrency or timeouts: seconds each
def test_fifty_concurrent_duplicate_deliveries_credit_once(
    btcpay_gateway: Gateway, btcpay: BTCPayFake
) -> None:
    credit_id, key = btcpay_gateway.create_account()
    inv = open_invoice(btcpay_gateway, key, "btc-lightning", amount=7, currency="USD")
    fake = btcpay.find(str(inv["invoice_id"]))
    btcpay.settle(fake)
    body = btcpay.event(fake, "InvoiceSettled")
    bodies = [body if i % 2 == 0 else btcpay.redelivery(body) for i in range(50)]
    with ThreadPoolExecutor(50) as pool:
        replies = list(pool.map(btcpay.deliver, bodies))
    assert [r.status_code for r in replies] == [200] * 50
    assert {r.json()["status"] for r in replies} == {"paid"}
    assert btcpay_gateway.nanos(credit_id) == (7 * NANOS, 0)
    assert len(topup_transfers(btcpay_gateway, credit_id)) == 1
    assert_clean(btcpay_gateway)


@pytest.mark.parametrize(
    "signature",
    [None, "sha256=" + "0" * 64, "wrong-secret", "sha1=abc", "", "tampered"],
    ids=["missing", "zeros", "wrong-secret", "other-scheme", "empty", "tampered-body"],
)
def test_forged_or_missing_signature_changes_nothing(
    btcpay_gateway: Gateway, btcpay: BTCPayFake, signature: str | None
) -> None:
    credit_id, key = btcpay_gateway.create_account()
    inv = open_invoice(btcpay_gateway, key, amount=5)
    fake = btcpay.find(str(inv["invoice_id"]))
    body = btcpay.event(fake, "InvoiceSettled")  # a forger's claim; BTCPay never settled it
    if signature == "wrong-secret":
        signature = btcpay.signature(body, secret="not-the-secret")
    elif signature == "tampered":
        signature = btcpay.signature(body)
        body = body.replace(b'"overPaid":false', b'"overPaid":true')
    r = btcpay.deliver(body, signature=signature)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "invalid_webhook"
    assert btcpay_gateway.nanos(credit_id) == (0, 0)
    assert topup_transfers(btcpay_gateway, credit_id) == []
    assert_clean(btcpay_gateway)


@pytest.mark.parametrize(
    "signature",
    [
        "sha256=" + "\u00e9" * 64,  # as latin-1 bytes: Starlette decodes headers as latin-1
        "sha256=\u00b2\u00b3",
        "sha256=" + "\u00ff" * 64,
    ],
    ids=["e-acute", "superscripts", "y-diaeresis"],
)
def test_non_ascii_signature_is_refused_not_a_500(
    btcpay_gateway: Gateway, btcpay: BTCPayFake, signature: str
) -> None:
    """compare_digest raised TypeError on non-ASCII text: a 500 for a forged delivery."""
    credit_id, key = btcpay_gateway.create_account()
    inv = open_invoice(btcpay_gateway, key, amount=5)
    body = btcpay.event(btcpay.find(str(inv["invoice_id"])), "InvoiceSettled")
    headers = [(b"Content-Type", b"application/json"), (b"BTCPay-Sig", signature.encode("latin-1"))]
    r = httpx.post(btcpay.webhook_url, content=body, headers=headers, timeout=30)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "invalid_webhook"
    assert btcpay_gateway.nanos(credit_id) == (0, 0)
    assert topup_transfers(btcpay_gateway, credit_id) == []
    assert_clean(btcpay_gateway)


def test_signed_settled_event_for_an_unpaid_invoice_credits_nothing(
    btcpay_gateway: Gateway, btcpay: BTCPayFake
) -> None:
    """The webhook only names the invoice; BTCPay's own answer decides (replays, reordering)."""
    credit_id, key = btcpay_gateway.create_account()
    inv = open_invoice(btcpay_gateway, key, amount=5)
    fake = btcpay.find(str(inv["invoice_id"]))
    r = btcpay.deliver(btcpay.event(fake, "InvoiceSettled"))
    assert r.status_code == 200 and r.json()["status"] == "pending"
    assert btcpay_gateway.nanos(credit_id) == (0, 0)
    assert_clean(btcpay_gateway)


def test_webhook_for_unknown_invoice_or_other_store_is_refused(
    btcpay_gateway: Gateway, btcpay: BTCPayFake
) -> None:
    credit_id, key = btcpay_gateway.create_account()
    r = btcpay.deliver(btcpay.event("NoSuchInvoice1234567890", "InvoiceSettled"))
    assert r.status_code == 404 and "NoSuchInvoice" in r.json()["error"]["message"]
    inv = open_invoice(btcpay_gateway, key, amount=5)
    fake = btcpay.find(str(inv["invoice_id"]))
    other_store = btcpay.event(fake, "InvoiceSettled", storeId="AnotherStore")
    assert btcpay.deliver(other_store).status_code == 400
    not_json = b"not json"
    assert btcpay.deliver(not_json).status_code == 400
    payout = btcpay.event(fake, "PayoutCreated")
    assert btcpay.deliver(payout).status_code == 400
    assert btcpay_gateway.nanos(credit_id) == (0, 0)
    assert_clean(btcpay_gateway)


def test_reconciler_credits_when_the_webhook_never_comes(
    btcpay_gateway: Gateway, btcpay: BTCPayFake
) -> None:
    credit_id, key = btcpay_gateway.create_account()
    inv = open_invoice(btcpay_gateway, key, "ltc", amount=12)
    btcpay.settle(btcpay.find(str(inv["invoice_id"])))
    deadline = time.time() + 15
    while time.time() < deadline and btcpay_gateway.nanos(credit_id)[0] == 0:
        time.sleep(0.1)
    assert btcpay_gateway.nanos(credit_id) == (12 * NANOS, 0)
    # and the late webhook then changes nothing
    assert (
        btcpay.deliver(
            btcpay.event(btcpay.find(str(inv["invoice_id"])), "InvoiceSettled")
        ).status_code
        == 200
    )
    assert btcpay_gateway.nanos(credit_id) == (12 * NANOS, 0)
    assert_clean(btcpay_gateway)


def test_policy_expired_underpaid_late_invalid_credit_nothing(
    btcpay_gateway: Gateway, btcpay: BTCPayFake
) -> None:
    credit_id, key = btcpay_gateway.create_account()
    cases = [
        ({}, "InvoiceExpired", {}, "expired"),
        ({"partial": True}, "InvoiceExpired", {"partiallyPaid": True}, "underpaid"),
        ({"late": True}, "InvoiceExpired", {}, "paid_late"),
        (None, "InvoiceInvalid", {"manuallyMarked": True}, "invalid"),
    ]
    for expire_kw, event_type, extra, expected in cases:
        inv = open_invoice(btcpay_gateway, key, "btc", amount=20)
        fake = btcpay.find(str(inv["invoice_id"]))
        if expire_kw is None:
            btcpay.invalidate(fake)
        else:
            btcpay.expire(fake, **expire_kw)
        r = btcpay.deliver(btcpay.event(fake, event_type, **extra))
        assert r.status_code == 200 and r.json()["status"] == expected
        assert (
            topup_status(btcpay_gateway, bearer(key), str(inv["invoice_id"])).json()["status"]
            == expected
        )
    assert btcpay_gateway.nanos(credit_id) == (0, 0)
    assert_clean(btcpay_gateway)


def test_policy_underpaid_then_marked_settled_by_operator_credits_once(
    btcpay_gateway: Gateway, btcpay: BTCPayFake
) -> None:
    credit_id, key = btcpay_gateway.create_account()
    inv = open_invoice(btcpay_gateway, key, "xmr", amount=40)
    fake = btcpay.find(str(inv["invoice_id"]))
    btcpay.expire(fake, partial=True)
    assert (
        btcpay.deliver(btcpay.event(fake, "InvoiceExpired", partiallyPaid=True)).json()["status"]
        == "underpaid"
    )
    btcpay.settle(fake, manually=True)
    body = btcpay.event(fake, "InvoiceSettled", manuallyMarked=True)
    assert btcpay.deliver(body).json()["status"] == "paid"
    assert btcpay.deliver(btcpay.redelivery(body)).status_code == 200
    assert btcpay_gateway.nanos(credit_id) == (40 * NANOS, 0)
    assert_clean(btcpay_gateway)


def test_policy_overpaid_credits_the_invoiced_usd_and_flags_it(
    btcpay_gateway: Gateway, btcpay: BTCPayFake
) -> None:
    credit_id, key = btcpay_gateway.create_account()
    inv = open_invoice(btcpay_gateway, key, "btc", amount=15)
    fake = btcpay.find(str(inv["invoice_id"]))
    btcpay.settle(fake, overpaid=True)
    assert btcpay.deliver(btcpay.event(fake, "InvoiceSettled", overPaid=True)).status_code == 200
    status = topup_status(btcpay_gateway, bearer(key), str(inv["invoice_id"])).json()
    assert status["status"] == "paid" and status["overpaid"] is True
    assert btcpay_gateway.nanos(credit_id) == (15 * NANOS, 0)
    assert_clean(btcpay_gateway)


def test_backend_failure_is_502_and_opens_nothing(
    btcpay_gateway: Gateway, btcpay: BTCPayFake
) -> None:
    credit_id, key = btcpay_gateway.create_account()
    btcpay.fail_create = 500
    r = create_topup(btcpay_gateway, bearer(key), "btc", body={"amount": 10, "currency": "USD"})
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "payment_backend_error"
    assert BTCPAY_KEY not in r.text
    assert btcpay_gateway.nanos(credit_id) == (0, 0)
    assert_clean(btcpay_gateway)


def test_payment_methods_show_btcpay_for_all_five(btcpay_gateway: Gateway) -> None:
    with btcpay_gateway.client() as c:
        data = c.get("/topup/payment-methods").json()["data"]
    assert {m["method"]: m["backend"] for m in data} == dict.fromkeys(PAYMENT_METHOD_IDS, "btcpay")


@pytest.mark.parametrize("method", ["ltc", "xmr"])
@pytest.mark.parametrize("currency", ["SATS", "BTC"])
def test_litecoin_and_monero_refuse_bitcoin_units(
    btcpay_gateway: Gateway, btcpay: BTCPayFake, method: str, currency: str
) -> None:
    """1000 SATS of Litecoin means nothing: a clear 400, and nothing is opened at BTCPay."""
    credit_id, key = btcpay_gateway.create_account()
    sent_before = len(btcpay.create_requests)
    r = create_topup(
        btcpay_gateway, bearer(key), method, body={"amount": 1000, "currency": currency}
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "currency" and 'stated in "USD"' in error["message"]
    assert len(btcpay.create_requests) == sent_before
    assert btcpay_gateway.nanos(credit_id) == (0, 0)
    assert_clean(btcpay_gateway)


def test_rates_come_from_the_store(btcpay_gateway: Gateway, btcpay: BTCPayFake) -> None:
    client = BTCPay(btcpay.base_url, BTCPAY_KEY, BTCPAY_STORE, None)

    async def rate() -> Decimal:
        try:
            return await client.btc_usd()
        finally:
            await client.close()

    assert btcpay_gateway.loop.run(rate()) == Decimal(BTC_USD)


def test_admin_api_lists_invoices_with_usd_and_paid_currency(
    btcpay_gateway: Gateway, btcpay: BTCPayFake
) -> None:
    credit_id, key = btcpay_gateway.create_account()
    paid = open_invoice(btcpay_gateway, key, "btc", amount="0.0002", currency="BTC")
    btcpay.settle(btcpay.find(str(paid["invoice_id"])), overpaid=True)
    assert (
        btcpay.deliver(
            btcpay.event(btcpay.find(str(paid["invoice_id"])), "InvoiceSettled")
        ).status_code
        == 200
    )
    open_invoice(btcpay_gateway, key, "xmr", amount=30, currency="USD")
    admin = {"Authorization": "Bearer test-admin-token"}
    with btcpay_gateway.client() as c:
        r = c.get("/admin/topups", params={"credit_id": credit_id}, headers=admin)
        assert r.status_code == 200, r.text
        rows = r.json()["data"]
        assert [row["method"] for row in rows] == ["xmr", "btc"]
        xmr, btc = rows
        assert xmr["status"] == "pending" and xmr["amount"] == "30" and xmr["currency"] == "USD"
        assert xmr["amount_usd"] == "30" and xmr["credited_usd"] == "0" and xmr["amount_due"]
        assert btc["status"] == "paid" and btc["amount"] == "0.0002" and btc["currency"] == "BTC"
        assert btc["amount_usd"] == "20" and btc["credited_usd"] == "20" and btc["overpaid"] is True
        only_paid = c.get(
            "/admin/topups", params={"status": "paid", "credit_id": credit_id}, headers=admin
        )
        assert [row["invoice_id"] for row in only_paid.json()["data"]] == [paid["invoice_id"]]
        # By the public account id (no secret in the URL); admin output shows only that id.
        account_id = btcpay_gateway.account_id(credit_id)
        by_id = c.get("/admin/topups", params={"account_id": account_id}, headers=admin)
        assert by_id.json()["data"] == rows
        assert {row["account_id"] for row in rows} == {account_id}
        assert credit_id not in by_id.text
        nobody = c.get("/admin/topups", params={"credit_id": "unknown"}, headers=admin)
        assert nobody.status_code == 200 and nobody.json()["data"] == []
        assert c.get("/admin/topups", params={"status": "bogus"}, headers=admin).status_code == 400
        assert c.get("/admin/topups").status_code == 401
        assert c.get("/admin/topups", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert_clean(btcpay_gateway)


def test_status_while_btcpay_is_down_answers_what_is_known(
    btcpay_gateway: Gateway, btcpay: BTCPayFake
) -> None:
    credit_id, key = btcpay_gateway.create_account()
    inv = open_invoice(btcpay_gateway, key, "btc", amount=9)
    fake = btcpay.find(str(inv["invoice_id"]))
    btcpay.settle(fake)
    btcpay.down = True
    try:
        r = topup_status(btcpay_gateway, bearer(key), str(inv["invoice_id"]))
        assert r.status_code == 200 and r.json()["status"] == "pending"
        delivery = btcpay.deliver(btcpay.event(fake, "InvoiceSettled"))
        assert delivery.status_code == 502  # BTCPay will redeliver
        assert btcpay_gateway.nanos(credit_id) == (0, 0)
    finally:
        btcpay.down = False
    assert btcpay.deliver(btcpay.event(fake, "InvoiceSettled")).json()["status"] == "paid"
    assert btcpay_gateway.nanos(credit_id) == (9 * NANOS, 0)
