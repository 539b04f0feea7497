"""Paying per request with Cashu ecash (NUT-24) from the published `cashu` wallet, against a real
nutshell mint: the 402's payment request, a data call, an image and a streamed chat paid with
tokens, the change redeemed by the wallet, and every token that must buy nothing (untrusted
mint, wrong unit, too small, double-spent, malformed) refused with a 400 that leaves the token
spendable. `farebox ledger check` runs after each test (conftest)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
from sqlalchemy import func, select

from farebox.cashu.store import account_id_for
from farebox.db.schema import cashu_receipts, queries
from farebox.money import NANOS_PER_USD

from cashu_support import Mint, Wallet, pay, post
from data_support import endpoint
from pay402_support import MEDIUM, challenges, revenue
from support import Gateway, wait_until

NANOS_PER_SAT = NANOS_PER_USD // 1000  # the dev wallet's $100,000 per BTC
GENERATIONS = "/v1/images/generations"
CHAT = "/v1/chat/completions"
PEOPLE = ("apollo/people-search", {"q_keywords": "software engineer", "per_page": 5})


def receipts(gw: Gateway) -> int:
    def read(conn: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(cashu_receipts)).scalar())

    return int(gw.loop.run(gw.services.db.read(read)))


def account(gw: Gateway, receipt_id: str) -> tuple[int, int]:
    gw.loop.run(gw.services.ledger.flush())
    bal = gw.loop.run(gw.services.ledger.balance(account_id_for(receipt_id)))
    assert bal is not None
    return bal.balance, bal.reserved


def charged(gw: Gateway, receipt_id: str) -> list[tuple[str, str, int]]:
    """(query_source, query_type, price) of the history rows the receipt paid for."""
    gw.loop.run(gw.services.ledger.flush())

    def read(conn: Any) -> list[tuple[str, str, int]]:
        rows = conn.execute(
            select(queries.c.query_source, queries.c.query_type, queries.c.price).where(
                queries.c.account_id == account_id_for(receipt_id)
            )
        )
        return [(r[0], r[1], int(r[2])) for r in rows]

    return list(gw.loop.run(gw.services.db.read(read)))


def test_keyless_402_carries_a_cashu_payment_request_for_the_trusted_mint(
    cashu_gw: Gateway, wallet: Wallet, mint: Mint
) -> None:
    r = post(cashu_gw, GENERATIONS, MEDIUM)
    assert r.status_code == 402, r.text
    assert set(challenges(r)) == {"L402", "Payment"}
    body = r.json()
    assert body["cashu"]["amount"] == 40 and body["cashu"]["unit"] == "sat"  # $0.04
    assert body["cashu"]["mints"] == [mint.url]
    assert body["cashu"]["request"] == r.headers["x-cashu"]
    assert "X-Cashu" in body["error"]["message"]
    # the published wallet decodes it (NUT-18), finds its mint accepted, and pays 40 sats
    token, sent = wallet.pay(r.headers["x-cashu"])
    assert sent == 40
    assert wallet.receive(token) == 40  # (not presented: the wallet takes it back)


def test_wallet_pays_an_image_and_redeems_its_change(cashu_gw: Gateway, wallet: Wallet) -> None:
    before_revenue, before_balance = revenue(cashu_gw), wallet.balance()
    token, sent = pay(wallet, cashu_gw, GENERATIONS, MEDIUM, extra=25)
    assert sent == 65
    r = post(cashu_gw, GENERATIONS, MEDIUM, token)
    assert r.status_code == 200, r.text
    assert httpx.get(r.json()["data"][0]["url"], timeout=30).status_code == 200
    receipt = r.headers["x-cashu-change-id"]
    assert r.headers["cache-control"] == "no-store"  # the change is bearer money
    assert wallet.decode(r.headers["x-cashu"])["amount"] == 25
    assert wallet.receive(r.headers["x-cashu"]) == 25
    assert wallet.balance() == before_balance - 40
    assert revenue(cashu_gw) - before_revenue == 40 * NANOS_PER_SAT
    assert charged(cashu_gw, receipt) == [("cashu", "image", 40 * NANOS_PER_SAT)]
    assert account(cashu_gw, receipt) == (0, 0)
    # the change stays fetchable by its id (already redeemed here, so the mint refuses it)
    with cashu_gw.client() as c:
        again = c.get(f"/v1/cashu/change/{receipt}")
    assert again.status_code == 200 and again.json()["token"] == r.headers["x-cashu"]
    assert again.headers["cache-control"] == "no-store"


def test_wallet_pays_a_data_call_at_its_fixed_price(cashu_gw: Gateway, wallet: Wallet) -> None:
    spec = endpoint(cashu_gw, PEOPLE[0])
    with cashu_gw.client() as c:
        first = c.post(spec.public_path, json=PEOPLE[1])
    assert first.status_code == 402, first.text
    token, sent = wallet.pay(first.headers["x-cashu"])
    assert sent == -(-spec.price // NANOS_PER_SAT)
    with cashu_gw.client() as c:
        r = c.post(spec.public_path, json=PEOPLE[1], headers={"X-Cashu": token})
    assert r.status_code == 200, r.text
    assert "people" in r.json()
    receipt = r.headers["x-cashu-change-id"]
    assert charged(cashu_gw, receipt) == [("cashu", "data", spec.price)]
    left, reserved = account(cashu_gw, receipt)
    assert reserved == 0 and 0 <= left < NANOS_PER_SAT  # less than a sat cannot be paid back
    assert "x-cashu" not in r.headers  # nothing to give back


def _events(raw: bytes) -> list[Any]:
    out: list[Any] = []
    for block in raw.split(b"\n\n"):
        if block.startswith(b"data: "):
            payload = block[6:]
            out.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
    return out


def test_wallet_pays_a_streamed_chat_and_gets_change_in_the_final_event(
    cashu_gw: Gateway, wallet: Wallet
) -> None:
    body = {
        "model": "chat-model",
        "messages": [{"role": "user", "content": "tell me about lighthouses"}],
        "max_tokens": 100,
        "stream": True,
        "stream_options": {"include_usage": True},
        "sim": {"output_tokens": 12},
    }
    before = wallet.balance()
    token, sent = pay(wallet, cashu_gw, CHAT, body, extra=3)
    with cashu_gw.client() as c:
        r = c.post(CHAT, json=body, headers={"X-Cashu": token})
    assert r.status_code == 200, r.text
    events = _events(r.content)
    done = events.index("[DONE]")
    assert done == len(events) - 2  # our event comes after [DONE]: SDKs stop reading there
    usage = events[done - 1]["usage"]
    payment = events[-1]
    assert payment["object"] == "farebox.payment"
    assert payment["change_id"] == r.headers["x-cashu-change-id"] and payment["change_ready"]
    cost = round(usage["cost"] * NANOS_PER_USD)
    assert payment["change_sats"] == (sent * NANOS_PER_SAT - cost) // NANOS_PER_SAT
    assert payment["change_sats"] > 50  # 12 of 100 output tokens were used
    assert wallet.receive(payment["cashu_change"]) == payment["change_sats"]
    assert wallet.balance() == before - sent + payment["change_sats"]
    assert charged(cashu_gw, payment["change_id"]) == [("cashu", "chat", cost)]


def test_dropped_stream_leaves_its_change_to_fetch_by_id(cashu_gw: Gateway, wallet: Wallet) -> None:
    body = {
        "model": "chat-model",
        "messages": [{"role": "user", "content": "a long story please"}],
        "max_tokens": 400,
        "stream": True,
        "sim": {"output_tokens": 400, "tps": 40},
    }
    token, sent = pay(wallet, cashu_gw, CHAT, body)
    with (
        httpx.Client(base_url=cashu_gw.url, timeout=30) as c,
        c.stream("POST", CHAT, json=body, headers={"X-Cashu": token}) as r,
    ):
        assert r.status_code == 200
        receipt = r.headers["x-cashu-change-id"]
        for _ in r.iter_raw():
            break  # the client goes away after its first bytes
    found: dict[str, Any] = {}

    def fetched() -> bool:
        with cashu_gw.client() as c:
            got = c.get(f"/v1/cashu/change/{receipt}")
        assert got.status_code in (200, 202), got.text
        found.update(got.json())
        return got.status_code == 200

    assert wait_until(fetched, timeout=30)
    [(_source, _type, cost)] = charged(cashu_gw, receipt)
    assert cost < sent * NANOS_PER_SAT // 2  # billed for what was delivered, not the cap
    assert found["sats"] == (sent * NANOS_PER_SAT - cost) // NANOS_PER_SAT
    assert wallet.receive(found["token"]) == found["sats"]


def test_failed_upstream_gives_the_whole_payment_back(cashu_gw: Gateway, wallet: Wallet) -> None:
    body = {
        "model": "failing-chat",
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 50,
    }
    before_revenue = revenue(cashu_gw)
    token, sent = pay(wallet, cashu_gw, CHAT, body, extra=2)
    r = post(cashu_gw, CHAT, body, token)
    assert r.status_code in (502, 503), r.text
    assert wallet.receive(r.headers["x-cashu"]) == sent
    assert revenue(cashu_gw) == before_revenue
    assert charged(cashu_gw, r.headers["x-cashu-change-id"]) == []


def _refused(gw: Gateway, token: str, code: str, body: Any = MEDIUM) -> None:
    before = (receipts(gw), revenue(gw))
    r = post(gw, GENERATIONS, body, token)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["param"] == "X-Cashu", error
    assert (receipts(gw), revenue(gw)) == before


def test_token_from_an_untrusted_mint_is_refused_before_any_mint_call(
    cashu_gw: Gateway, cashu_venv: Any, untrusted_mint: Mint
) -> None:
    other = Wallet(cashu_venv, untrusted_mint)
    try:
        other.mint_sats(100)
        token = other.send(60)
        _refused(cashu_gw, token, "cashu_mint_not_accepted")
        assert other.receive(token) == 60  # never swapped: still the payer's
    finally:
        other.close()


def test_token_in_another_unit_is_refused(cashu_gw: Gateway, cashu_venv: Any, mint: Mint) -> None:
    cents = Wallet(cashu_venv, mint, unit="usd")
    try:
        cents.mint_sats(500)
        token = cents.send(100)
        assert cents.decode(token)["unit"] == "usd"
        _refused(cashu_gw, token, "cashu_wrong_unit")
        assert cents.receive(token) == 100
    finally:
        cents.close()


def test_too_small_token_is_refused_and_stays_spendable(cashu_gw: Gateway, wallet: Wallet) -> None:
    token = wallet.send(39)  # the image costs 40 sats
    _refused(cashu_gw, token, "cashu_amount_insufficient")
    assert wallet.receive(token) == 39


def test_malformed_token_is_refused(cashu_gw: Gateway) -> None:
    _refused(cashu_gw, "cashuBnot-a-token", "cashu_malformed_token")
    _refused(cashu_gw, "x" * 20_000, "cashu_malformed_token")


def test_double_spent_token_is_refused_by_the_mint(cashu_gw: Gateway, wallet: Wallet) -> None:
    token, _sent = pay(wallet, cashu_gw, GENERATIONS, MEDIUM)
    first = post(cashu_gw, GENERATIONS, MEDIUM, token)
    assert first.status_code == 200, first.text
    _refused(cashu_gw, token, "cashu_token_spent")


def test_change_ids_that_do_not_exist_are_404(cashu_gw: Gateway) -> None:
    with cashu_gw.client() as c:
        for receipt in ("0" * 32, "not-an-id", "../../etc"):
            r = c.get(f"/v1/cashu/change/{receipt}")
            assert r.status_code == 404, r.text


def test_chat_402_offers_l402_and_cashu_but_not_the_charge_intent(cashu_gw: Gateway) -> None:
    body = {
        "model": "chat-model",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 10,
    }
    r = post(cashu_gw, CHAT, body)
    assert r.status_code == 402, r.text
    assert set(challenges(r)) == {"L402"}
    assert r.headers["x-cashu"].startswith("creqA")
    assert "at most" in r.json()["error"]["message"]


def test_change_is_kept_no_longer_than_its_lifetime(cashu_gw: Gateway, wallet: Wallet) -> None:
    token, _sent = pay(wallet, cashu_gw, GENERATIONS, MEDIUM, extra=1)
    r = post(cashu_gw, GENERATIONS, MEDIUM, token)
    assert r.status_code == 200, r.text
    wallet.receive(r.headers["x-cashu"])
    receipt = r.headers["x-cashu-change-id"]

    def expire(conn: Any) -> None:
        conn.execute(
            cashu_receipts.update()
            .where(cashu_receipts.c.id == receipt)
            .values(change_until=time.time() - 1)
        )

    cashu_gw.loop.run(cashu_gw.services.db.write(expire))
    with cashu_gw.client() as c:
        gone = c.get(f"/v1/cashu/change/{receipt}")
    assert gone.status_code == 410, gone.text


def test_a_video_jobs_change_is_there_when_the_job_ends(cashu_gw: Gateway, wallet: Wallet) -> None:
    body = {"model": "kling-2.1-pro", "prompt": "waves", "duration": "5"}  # 5 s: $0.25
    token, sent = pay(wallet, cashu_gw, "/v1/videos", body, extra=10)
    assert sent == 260
    r = post(cashu_gw, "/v1/videos", body, token)
    assert r.status_code == 202, r.text
    assert "x-cashu" not in r.headers  # the job is charged when it ends
    receipt = r.headers["x-cashu-change-id"]
    found: dict[str, Any] = {}

    def ready() -> bool:
        with cashu_gw.client() as c:
            got = c.get(f"/v1/cashu/change/{receipt}")
        found.update(got.json())
        return got.status_code == 200

    assert wait_until(ready, timeout=30)
    assert found["sats"] == 10
    assert wallet.receive(found["token"]) == 10
    assert charged(cashu_gw, receipt) == [("cashu", "video", 250 * NANOS_PER_SAT)]
