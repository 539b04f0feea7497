"""Every bad top-up request is a clear 4xx and changes nothing: no invoice, no balance."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from farebox.payments import invoices
from farebox.sim.server import SimServer

from payments_support import assert_clean, bearer, create_topup, topup_status
from support import ADMIN_TOKEN, Gateway, database_url, free_port, require_db, running_gateway
from support import test_catalog as sim_catalog

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
    # Decimal text bounded before any arithmetic: "1e999990" BTC blocked the server for 115 s
    # (and its 400 echoed a million digits); "1e999999" was a 500 (decimal.Overflow).
    ("exponent", {"amount": "1e999990", "currency": "BTC"}, "amount", "too large"),
    ("exponent sats", {"amount": "1e999990", "currency": "SATS"}, "amount", "too large"),
    ("exponent usd", {"amount": "1e999990", "currency": "USD"}, "amount", "too large"),
    ("overflow", {"amount": "1e999999", "currency": "SATS"}, "amount", "too large"),
    ("negative overflow", {"amount": "-1e999999", "currency": "BTC"}, "amount", "too large"),
    ("tiny", {"amount": "1e-999999", "currency": "BTC"}, "amount", "decimal places"),
    ("5000 digits", {"amount": "9" * 5000, "currency": "SATS"}, "amount", "40 characters"),
    ("superscript", {"amount": "\u00b2", "currency": "SATS"}, "amount", "not a number"),
    ("underscores", {"amount": "1_000", "currency": "SATS"}, "amount", "not a number"),
    ("padded", {"amount": " 5 ", "currency": "USD"}, "amount", "not a number"),
    ("object", {"amount": {"value": 5}, "currency": "USD"}, "amount", "must be a number"),
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
    assert r.status_code == 400, r.text[:500]
    assert len(r.content) <= 1024, r.text[:200]
    error = r.json()["error"]
    assert error["param"] == param
    assert words.lower() in error["message"].lower(), error["message"]
    assert_nothing_changed(dev_gateway, credit_id)


def test_amounts_that_froze_the_event_loop_are_refused_at_once(dev_gateway: Gateway) -> None:
    """A "1e999990" BTC top-up held the event loop for 115 s and its 400 echoed the million
    digits. Refused before any arithmetic now; the client waits 10 s, ample for what takes
    microseconds, so the old code fails here rather than passing slowly."""
    credit_id, key = dev_gateway.create_account()
    with httpx.Client(base_url=dev_gateway.url, timeout=10) as quick:
        for currency in ("BTC", "SATS", "USD"):
            for raw in (b'"1e999990"', b"1e999990", b'"-1e999990"'):
                body = b'{"amount": ' + raw + b', "currency": "' + currency.encode() + b'"}'
                r = quick.post(
                    "/topup/create/btc-lightning",
                    content=body,
                    headers={**bearer(key), "Content-Type": "application/json"},
                )
                assert r.status_code == 400, r.text[:300]
                assert len(r.content) <= 1024
        for field in ("threshold_usd", "topup_amount_usd"):
            r = quick.post(
                "/nwc-auto-topup/connect",
                json={"nwc_url": NWC_URL, field: "1e999990"},
                headers={"x-credit-id": credit_id},
            )
            assert r.status_code == 400 and r.json()["error"]["param"] == field, r.text[:300]
    assert_nothing_changed(dev_gateway, credit_id)


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


BAD_JSON: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("not-json", b"not json"),
    ("array", b"[1, 2]"),
    ("nan-literal", b'{"amount": NaN, "currency": "USD"}'),
    ("overflow", b'{"amount": 1e999999}'),
    ("exponent-number", b'{"amount": 1e999990, "currency": "BTC"}'),
    ("lone-surrogate", b'{"amount": 5, "currency": "\\ud800"}'),
    ("5000-digit-number", b'{"amount": ' + b"9" * 5000 + b', "currency": "SATS"}'),
    # Python's json module, which reads the exact decimals, overflowed the stack (a 500).
    ("nested-300", b'{"amount": ' + deep(300) + b', "currency": "SATS"}'),
    ("nested-2000", b'{"amount": ' + deep(2000) + b', "currency": "SATS"}'),
    ("nested-5000", deep(5000)),
    ("objects-nested-2000", b'{"a":' * 2000 + b"1" + b"}" * 2000),
]


@pytest.mark.parametrize("raw", [b[1] for b in BAD_JSON], ids=[b[0] for b in BAD_JSON])
@pytest.mark.parametrize("method", ["btc-lightning", "btc"])
def test_bad_json_bodies(dev_gateway: Gateway, raw: bytes, method: str) -> None:
    credit_id, key = dev_gateway.create_account()
    r = create_topup(dev_gateway, bearer(key), method, body=raw)
    assert r.status_code == 400, r.text[:500]
    assert len(r.content) <= 1024, r.text[:200]
    assert_nothing_changed(dev_gateway, credit_id)


NWC_URL = f"nostr+walletconnect://{'ab' * 32}?relay=wss://r.example&secret={'cd' * 32}"
BAD_NWC: list[tuple[str, bytes]] = [
    ("nested-2000", b'{"nwc_url": ' + deep(2000) + b"}"),
    ("nested-5000", deep(5000)),
    ("threshold-nested-300", b'{"threshold_usd": ' + deep(300) + b"}"),
    *(
        (f"{field}={value}", orjson.dumps({"nwc_url": NWC_URL, field: value}))
        for field in ("threshold_usd", "topup_amount_usd")
        for value in ("1e999990", "1e999999", "-1e999999", "\u00b2", "NaN", "9" * 5000)
    ),
    ("threshold-exponent-number", b'{"nwc_url": "x", "threshold_usd": 1e999990}'),
    # urlsplit raises ValueError on an unclosed IPv6 bracket: a 500.
    ("relay-unclosed-ipv6", orjson.dumps({"nwc_url": NWC_URL.replace("r.example", "[::1")})),
    ("host-unclosed-ipv6", orjson.dumps({"nwc_url": "nostr+walletconnect://[ab?relay=wss://r"})),
]


@pytest.mark.parametrize("raw", [b[1] for b in BAD_NWC], ids=[b[0] for b in BAD_NWC])
def test_bad_nwc_connect_bodies(dev_gateway: Gateway, raw: bytes) -> None:
    credit_id, _key = dev_gateway.create_account()
    with dev_gateway.client() as c:
        r = c.post(
            "/nwc-auto-topup/connect",
            content=raw,
            headers={"x-credit-id": credit_id, "Content-Type": "application/json"},
        )
        assert r.status_code == 400, r.text[:500]
        assert len(r.content) <= 1024, r.text[:200]
        state = c.get("/nwc-auto-topup", headers={"x-credit-id": credit_id}).json()
        assert state["connected"] is False
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
    assert topup_status(dev_gateway, bearer(other_key), "%00").status_code == 404  # a 500 on PG
    assert topup_status(dev_gateway, bearer(other_key), "inv_%00").status_code == 404
    assert topup_status(dev_gateway, {}, inv["invoice_id"]).status_code == 401
    assert dev_gateway.nanos(other) == (0, 0) and dev_gateway.nanos(owner) == (0, 0)
    assert_clean(dev_gateway)


def test_webhooks_for_backends_without_them_are_refused(dev_gateway: Gateway) -> None:
    with dev_gateway.client() as c:
        assert c.post("/topup/webhook/devwallet", content=b"{}").status_code == 401
        assert c.post("/topup/webhook/btcpay", content=b"{}").status_code == 404
        long_name = c.post("/topup/webhook/" + "x" * 10_000, content=b"{}")
        assert long_name.status_code == 404 and len(long_name.content) <= 1024
    assert_clean(dev_gateway)


def test_admin_topups_filter_with_a_nul_matches_nothing(dev_gateway: Gateway) -> None:
    """PostgreSQL refuses NUL in text: the filtered listing was a 500."""
    with dev_gateway.client() as c:
        for name in ("account_id", "credit_id"):
            r = c.get(
                "/admin/topups",
                params={name: "a\x00b"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert r.status_code == 200 and r.json()["data"] == [], r.text


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def lnbits_webhook_gateway(
    request: pytest.FixtureRequest, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """LNbits configured (at an address nothing answers): its webhook looks the invoice up in
    our database before anything asks LNbits."""
    require_db(request.param)
    tmp = tmp_path_factory.mktemp("lnbits-hook")
    env = {
        "FAREBOX_LNBITS_URL": f"http://127.0.0.1:{free_port()}",
        "FAREBOX_LNBITS_INVOICE_KEY": "not-used",
        "FAREBOX_TOPUP_RATES": "BTC=100000",
        "FAREBOX_TOPUP_POLL_S": "3600",
    }
    with (
        database_url(request.param, tmp) as url,
        running_gateway(url, sim_catalog(sim.url), extra_env=env) as gw,
    ):
        yield gw


@pytest.mark.parametrize(
    "payment_hash",
    ["\x00" * 64, "\u00e9" * 64, "a" * 63 + "\x00"],
    ids=["nul", "non-ascii", "trailing-nul"],
)
def test_lnbits_webhook_with_an_odd_payment_hash_is_a_404(
    lnbits_webhook_gateway: Gateway, payment_hash: str
) -> None:
    """PostgreSQL refuses NUL in text: the lookup was a 500."""
    with lnbits_webhook_gateway.client() as c:
        r = c.post("/topup/webhook/lnbits", json={"payment_hash": payment_hash})
    assert r.status_code == 404, r.text
    assert len(r.content) <= 1024
    assert_clean(lnbits_webhook_gateway)


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
