"""Every bad top-up request is a clear 4xx and changes nothing: no invoice, no balance."""

from __future__ import annotations

from typing import Any

import pytest

from farebox.payments import invoices

from payments_support import assert_clean, bearer, create_topup, topup_status
from support import Gateway

BAD_BODIES: list[tuple[str, Any, str, str]] = [
    # (case, body, param, words in the message)
    ("non-numeric", {"amount": "abc", "currency": "SATS"}, "amount", "not a number"),
    ("negative", {"amount": -1000, "currency": "SATS"}, "amount", "greater than zero"),
    ("zero", {"amount": 0, "currency": "USD"}, "amount", "greater than zero"),
    ("boolean", {"amount": True, "currency": "USD"}, "amount", "must be a number"),
    ("list", {"amount": [5], "currency": "USD"}, "amount", "must be a number"),
    ("missing amount", {"currency": "USD"}, "amount", "required"),
    ("nan string", {"amount": "NaN", "currency": "USD"}, "amount", "finite"),
    ("infinity", {"amount": "Infinity", "currency": "USD"}, "amount", "finite"),
    ("fractional sats", {"amount": 1000.5, "currency": "SATS"}, "amount", "whole number"),
    ("sub-cent usd", {"amount": "1.001", "currency": "USD"}, "amount", "2 decimal"),
    ("sub-sat btc", {"amount": "0.000010001", "currency": "BTC"}, "amount", "8 decimal"),
    ("huge", {"amount": "1" + "0" * 40, "currency": "SATS"}, "amount", "number"),
    ("unsupported currency", {"amount": 5, "currency": "EUR"}, "currency", "Unsupported"),
    ("missing currency", {"amount": 5}, "currency", "required"),
    ("currency not a string", {"amount": 5, "currency": 1}, "currency", "must be"),
    ("below minimum", {"amount": 10, "currency": "SATS"}, "amount", "between"),
    ("above maximum", {"amount": 5000, "currency": "USD"}, "amount", "between"),
]


def invoice_count(gw: Gateway, credit_id: str) -> int:
    rows = gw.loop.run(
        gw.services.db.read(
            lambda conn: invoices.list_invoices(conn, account_id=gw.account_id(credit_id))
        )
    )
    return len(rows)


def assert_nothing_changed(gw: Gateway, credit_id: str) -> None:
    assert gw.nanos(credit_id) == (0, 0)
    assert invoice_count(gw, credit_id) == 0
    assert_clean(gw)


@pytest.mark.parametrize(
    ("case", "body", "param", "words"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES]
)
def test_bad_amounts_and_currencies(
    dev_gateway: Gateway, case: str, body: Any, param: str, words: str
) -> None:
    credit_id, key = dev_gateway.create_account()
    r = create_topup(dev_gateway, bearer(key), body=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param
    assert words.lower() in error["message"].lower(), error["message"]
    assert_nothing_changed(dev_gateway, credit_id)


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[1, 2]", b'{"amount": NaN, "currency": "USD"}', b'{"amount": 1e999999}'],
    ids=["empty", "not-json", "array", "nan-literal", "overflow"],
)
def test_bad_json_bodies(dev_gateway: Gateway, raw: bytes) -> None:
    credit_id, key = dev_gateway.create_account()
    r = create_topup(dev_gateway, bearer(key), body=raw)
    assert r.status_code == 400, r.text
    assert_nothing_changed(dev_gateway, credit_id)


def test_unknown_method(dev_gateway: Gateway) -> None:
    credit_id, key = dev_gateway.create_account()
    r = create_topup(dev_gateway, bearer(key), "doge", body={"amount": 5, "currency": "USD"})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == "method" and "btc-lightning" in error["message"]
    assert_nothing_changed(dev_gateway, credit_id)


def test_method_not_enabled_on_this_server(dev_gateway: Gateway) -> None:
    credit_id, key = dev_gateway.create_account()
    r = create_topup(dev_gateway, bearer(key), "xmr", body={"amount": 50, "currency": "USD"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "payment_method_unavailable"
    assert_nothing_changed(dev_gateway, credit_id)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer sk-nope"}, {"api-key": "sk-nope"}, {"x-credit-id": "nobody"}],
    ids=["none", "bad-bearer", "bad-api-key", "unknown-credit-id"],
)
def test_auth_required(dev_gateway: Gateway, headers: dict[str, str]) -> None:
    credit_id, _key = dev_gateway.create_account()
    r = create_topup(dev_gateway, headers, body={"amount": 5, "currency": "USD"})
    assert r.status_code == 401, r.text
    assert_nothing_changed(dev_gateway, credit_id)


def test_status_of_unknown_or_foreign_invoice_is_404(dev_gateway: Gateway) -> None:
    owner, owner_key = dev_gateway.create_account()
    other, other_key = dev_gateway.create_account()
    inv = create_topup(dev_gateway, bearer(owner_key), body={"amount": 1, "currency": "USD"}).json()
    assert topup_status(dev_gateway, bearer(other_key), inv["invoice_id"]).status_code == 404
    assert topup_status(dev_gateway, bearer(other_key), "inv_nope").status_code == 404
    assert topup_status(dev_gateway, bearer(other_key), "x" * 500).status_code == 404
    assert topup_status(dev_gateway, {}, inv["invoice_id"]).status_code == 401
    assert dev_gateway.nanos(other) == (0, 0) and dev_gateway.nanos(owner) == (0, 0)
    assert_clean(dev_gateway)


def test_webhooks_for_backends_without_them_are_refused(dev_gateway: Gateway) -> None:
    with dev_gateway.client() as c:
        assert c.post("/topup/webhook/devwallet", content=b"{}").status_code == 401
        assert c.post("/topup/webhook/btcpay", content=b"{}").status_code == 404
    assert_clean(dev_gateway)


def test_a_server_without_payment_backends_offers_nothing(gateway: Gateway) -> None:
    credit_id, key = gateway.create_account()
    with gateway.client() as c:
        methods = c.get("/topup/payment-methods").json()["data"]
        assert [m["enabled"] for m in methods] == [False] * 5
        r = c.post(
            "/topup/create/btc-lightning",
            json={"amount": 5, "currency": "USD"},
            headers=bearer(key),
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "payment_method_unavailable"
        nwc = c.post(
            "/nwc-auto-topup/connect",
            json={
                "nwc_url": f"nostr+walletconnect://{'ab' * 32}?relay=wss://r.example&secret={'cd' * 32}"
            },
            headers={"x-credit-id": credit_id},
        )
        assert nwc.status_code == 400 and "Lightning" in nwc.json()["error"]["message"]
        assert (
            c.get("/nwc-auto-topup", headers={"x-credit-id": credit_id}).json()["connected"]
            is False
        )
    assert gateway.nanos(credit_id) == (0, 0)
    assert_clean(gateway)
