"""NWC auto top-up: a settled request under the threshold makes the customer's wallet pay a
Lightning invoice over a real relay (NIP-47); credited once on the backend's confirmation."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from farebox.db.schema import nwc_connections
from farebox.payments import invoices

from nwc_wallet import WalletService
from support import NANOS, Gateway, free_port


def connect(gw: Gateway, credit_id: str, body: Any) -> httpx.Response:
    with gw.client() as c:
        return c.post("/nwc-auto-topup/connect", json=body, headers={"x-credit-id": credit_id})


def settings(gw: Gateway, credit_id: str) -> dict[str, Any]:
    with gw.client() as c:
        r = c.get("/nwc-auto-topup", headers={"x-credit-id": credit_id})
        assert r.status_code == 200, r.text
        return dict(r.json())


def pricey_chat(gw: Gateway, key: str) -> httpx.Response:
    with gw.client() as c:
        return c.post(
            "/v1/chat/completions",
            json={
                "model": "pricey-model",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 20,
            },
            headers={"Authorization": f"Bearer {key}"},
        )


def wait_for(predicate: Any, timeout: float = 20) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


def nwc_invoices(gw: Gateway, credit_id: str) -> list[invoices.TopupInvoice]:
    rows = gw.loop.run(
        gw.services.db.read(
            lambda c: invoices.list_invoices(c, account_id=gw.account_id(credit_id))
        )
    )
    return [r for r in rows if r.source == "nwc"]


def test_balance_under_threshold_after_chat_tops_up_once(
    nwc_gateway: Gateway, wallet: WalletService
) -> None:
    credit_id, key = nwc_gateway.create_account("10.01")
    uri, _secret = wallet.connection_uri()
    r = connect(
        nwc_gateway, credit_id, {"nwc_url": uri, "threshold_usd": 10, "topup_amount_usd": 10}
    )
    assert r.status_code == 200, r.text
    assert r.json()["connected"] is True and r.json()["threshold_usd"] == 10.0
    time.sleep(0.5)
    assert nwc_invoices(nwc_gateway, credit_id) == []  # $10.05 is not under $10
    asked = len(wallet.requests)

    chat = pricey_chat(nwc_gateway, key)
    assert chat.status_code == 200, chat.text
    cost = round(chat.json()["usage"]["cost"] * NANOS)
    assert cost > 10_000_000  # the request took the balance under $10

    expected = 10_010_000_000 - cost + 10 * NANOS
    assert wait_for(lambda: nwc_gateway.nanos(credit_id)[0] == expected), nwc_gateway.nanos(
        credit_id
    )
    paid = nwc_invoices(nwc_gateway, credit_id)
    assert [(i.status, i.usd_nanos) for i in paid] == [("paid", 10 * NANOS)]
    pays = [q for q in wallet.requests[asked:] if q["method"] == "pay_invoice"]
    assert [q["params"]["invoice"] for q in pays] == [paid[0].bolt11]

    state = settings(nwc_gateway, credit_id)
    assert state["failures"] == 0 and state["last_success_at"] and state["last_error"] is None
    assert state["attempts"][0]["outcome"] == "paid"
    assert state["attempts"][0]["invoice_id"] == paid[0].id
    time.sleep(0.5)
    assert nwc_gateway.nanos(credit_id)[0] == expected  # once
    assert nwc_gateway.check().ok


def test_wallet_refusing_is_recorded_and_credits_nothing_then_retried(
    nwc_gateway: Gateway, wallet: WalletService
) -> None:
    credit_id, key = nwc_gateway.create_account("5.01")
    wallet.mode = "refuse"
    uri, _ = wallet.connection_uri()
    assert (
        connect(
            nwc_gateway, credit_id, {"nwc_url": uri, "threshold_usd": 5, "topup_amount_usd": "2.5"}
        ).status_code
        == 200
    )
    chat = pricey_chat(nwc_gateway, key)
    assert chat.status_code == 200
    after_chat = nwc_gateway.nanos(credit_id)[0]
    assert after_chat < 5 * NANOS

    assert wait_for(lambda: settings(nwc_gateway, credit_id)["failures"] >= 1)
    state = settings(nwc_gateway, credit_id)
    assert "budget used up" in state["last_error"] and state["last_error"].startswith("wallet:")
    assert state["next_attempt_at"] is not None
    failed = [a for a in state["attempts"] if a["outcome"] == "failed"]
    assert (failed and "QuotaExceeded" in failed[-1]["error"]) or "budget" in failed[-1]["error"]
    assert nwc_gateway.nanos(credit_id)[0] == after_chat  # no credit
    assert all(i.status != "paid" for i in nwc_invoices(nwc_gateway, credit_id))
    assert nwc_gateway.check().ok

    wallet.mode = "pay"  # the wallet recovers: the backoff retry tops up
    assert wait_for(lambda: nwc_gateway.nanos(credit_id)[0] == after_chat + 2_500_000_000)
    state = settings(nwc_gateway, credit_id)
    assert state["failures"] == 0 and state["attempts"][0]["outcome"] == "paid"
    assert nwc_gateway.check().ok


@pytest.mark.slow  # concurrency or timeouts: seconds each
def test_relay_down_is_recorded_and_requests_are_not_blocked(nwc_gateway: Gateway) -> None:
    credit_id, key = nwc_gateway.create_account("5.01")
    dead_relay = f"ws://127.0.0.1:{free_port()}"
    uri = f"nostr+walletconnect://{'ab' * 32}?relay={dead_relay}&secret={'cd' * 32}"
    assert connect(nwc_gateway, credit_id, {"nwc_url": uri, "threshold_usd": 5}).status_code == 200
    started = time.time()
    assert pricey_chat(nwc_gateway, key).status_code == 200
    assert pricey_chat(nwc_gateway, key).status_code == 200
    assert time.time() - started < 3  # the wallet's trouble never holds a request up
    before = nwc_gateway.nanos(credit_id)[0]
    assert wait_for(lambda: settings(nwc_gateway, credit_id)["failures"] >= 1)
    assert settings(nwc_gateway, credit_id)["last_error"].startswith("wallet:")
    assert nwc_gateway.nanos(credit_id)[0] == before
    assert nwc_gateway.check().ok


@pytest.mark.slow  # concurrency or timeouts: seconds each
def test_one_attempt_at_a_time_per_account(nwc_gateway: Gateway, wallet: WalletService) -> None:
    credit_id, key = nwc_gateway.create_account("5.02")
    wallet.mode, wallet.delay_s = "slow", 1.5
    uri, _ = wallet.connection_uri()
    asked = len(wallet.requests)
    assert (
        connect(
            nwc_gateway, credit_id, {"nwc_url": uri, "threshold_usd": 5, "topup_amount_usd": 20}
        ).status_code
        == 200
    )
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda _: pricey_chat(nwc_gateway, key), range(6)))
    assert all(r.status_code == 200 for r in replies)
    assert wait_for(lambda: any(i.status == "paid" for i in nwc_invoices(nwc_gateway, credit_id)))
    time.sleep(1)
    assert len([q for q in wallet.requests[asked:] if q["method"] == "pay_invoice"]) == 1
    assert len(nwc_invoices(nwc_gateway, credit_id)) == 1
    assert nwc_gateway.check().ok


def test_secret_is_encrypted_at_rest_and_never_shown(
    nwc_gateway: Gateway, wallet: WalletService
) -> None:
    credit_id, _key = nwc_gateway.create_account("50")
    uri, secret = wallet.connection_uri()
    r = connect(nwc_gateway, credit_id, {"nwc_url": uri})
    assert r.status_code == 200 and secret not in r.text
    state = settings(nwc_gateway, credit_id)
    assert state["threshold_usd"] == 10.0 and state["topup_amount_usd"] == 10.0  # PPQ's defaults
    assert state["wallet_pubkey"] == wallet.pubkey and state["relays"] == [wallet.relay_url]
    assert secret not in str(state)
    stored = nwc_gateway.loop.run(
        nwc_gateway.services.db.read(
            lambda c: c.execute(
                select(nwc_connections).where(
                    nwc_connections.c.account_id == nwc_gateway.account_id(credit_id)
                )
            ).one()
        )
    )
    assert secret not in str(tuple(stored)) and uri not in str(tuple(stored))
    assert nwc_gateway.services.nwc.cipher.decrypt(stored.uri_encrypted) == uri


def test_get_and_delete(nwc_gateway: Gateway, wallet: WalletService) -> None:
    credit_id, _key = nwc_gateway.create_account()
    assert settings(nwc_gateway, credit_id) == {"status": "success", "connected": False}
    uri, _ = wallet.connection_uri()
    assert (
        connect(nwc_gateway, credit_id, {"nwc_url": uri, "threshold_usd": "7.5"}).status_code == 200
    )
    assert settings(nwc_gateway, credit_id)["threshold_usd"] == 7.5
    with nwc_gateway.client() as c:
        r = c.delete("/nwc-auto-topup/connection", headers={"x-credit-id": credit_id})
        assert r.status_code == 200 and r.json()["connected"] is False
        assert (
            c.delete("/nwc-auto-topup/connection", headers={"x-credit-id": credit_id}).status_code
            == 404
        )
        assert c.get("/nwc-auto-topup").status_code == 401
        assert c.delete("/nwc-auto-topup/connection").status_code == 401
    assert settings(nwc_gateway, credit_id)["connected"] is False


GOOD = f"nostr+walletconnect://{'ab' * 32}?relay=wss://relay.example.com&secret={'cd' * 32}"
BAD_CONNECTS = [
    ("missing nwc_url", {}, "nwc_url"),
    ("not a string", {"nwc_url": 5}, "nwc_url"),
    ("wrong scheme", {"nwc_url": GOOD.replace("nostr+walletconnect", "https")}, "nwc_url"),
    ("short pubkey", {"nwc_url": GOOD.replace("ab" * 32, "ab" * 10)}, "nwc_url"),
    ("no relay", {"nwc_url": f"nostr+walletconnect://{'ab' * 32}?secret={'cd' * 32}"}, "nwc_url"),
    ("http relay", {"nwc_url": GOOD.replace("wss://", "https://")}, "nwc_url"),
    ("no secret", {"nwc_url": GOOD.split("&secret")[0]}, "nwc_url"),
    ("bad secret", {"nwc_url": GOOD.replace("cd" * 32, "zz" * 32)}, "nwc_url"),
    ("threshold under minimum", {"nwc_url": GOOD, "threshold_usd": 4.99}, "threshold_usd"),
    ("threshold not a number", {"nwc_url": GOOD, "threshold_usd": "ten"}, "threshold_usd"),
    ("negative top-up", {"nwc_url": GOOD, "topup_amount_usd": -10}, "topup_amount_usd"),
    ("top-up too large", {"nwc_url": GOOD, "topup_amount_usd": 50000}, "topup_amount_usd"),
]


@pytest.mark.parametrize(("case", "body", "param"), BAD_CONNECTS, ids=[c[0] for c in BAD_CONNECTS])
def test_bad_connect_requests(nwc_gateway: Gateway, case: str, body: Any, param: str) -> None:
    credit_id, _key = nwc_gateway.create_account()
    r = connect(nwc_gateway, credit_id, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert settings(nwc_gateway, credit_id)["connected"] is False
    assert nwc_gateway.nanos(credit_id) == (0, 0)


def test_connect_needs_a_known_credit_id(nwc_gateway: Gateway) -> None:
    with nwc_gateway.client() as c:
        assert c.post("/nwc-auto-topup/connect", json={"nwc_url": GOOD}).status_code == 401
        r = c.post(
            "/nwc-auto-topup/connect", json={"nwc_url": GOOD}, headers={"x-credit-id": "nobody"}
        )
        assert r.status_code == 401


@pytest.mark.slow  # concurrency or timeouts: seconds each
def test_wallet_never_answering_times_out_and_is_recorded(
    nwc_gateway: Gateway, wallet: WalletService
) -> None:
    credit_id, key = nwc_gateway.create_account("5.01")
    wallet.mode = "silent"
    uri, _ = wallet.connection_uri()
    assert connect(nwc_gateway, credit_id, {"nwc_url": uri, "threshold_usd": 5}).status_code == 200
    assert pricey_chat(nwc_gateway, key).status_code == 200
    before = nwc_gateway.nanos(credit_id)[0]
    assert wait_for(lambda: settings(nwc_gateway, credit_id)["failures"] >= 1)
    state = settings(nwc_gateway, credit_id)
    assert state["last_error"].startswith("wallet:")
    assert state["attempts"][0]["outcome"] == "failed" and state["attempts"][0]["invoice_id"]
    assert nwc_gateway.nanos(credit_id)[0] == before
