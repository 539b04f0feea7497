"""Chat and messages paid per request over L402, beyond PPQ: a keyless request is priced at its
worst case (under the operator's ceiling), and what it does not use stays on the paid token as a
balance that later chat requests on the same endpoint draw down, then a fresh 402. The published
`l402-requests` client chats several times on one payment. SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from farebox.money import NANOS_PER_USD
from farebox.sim.server import SimServer

import support
from pay402_support import (
    PAY_ENV,
    challenges,
    credential_nanos,
    history,
    invoices_issued,
    l402_wallet,
    pay_l402,
    payment_hash,
    require,
)
from support import Gateway, database_url, require_db, running_gateway

CHAT = "/v1/chat/completions"
# pricey-model: $1,000 per 1M input tokens, $2,000 per 1M output tokens (in nanodollars each)
IN, OUT = 1_000_000, 2_000_000
ASK = {
    "model": "pricey-model",
    "messages": [{"role": "user", "content": "say something short"}],
    "max_tokens": 50,
    "sim": {"output_tokens": 5},
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def chat_pay_gw(
    request: pytest.FixtureRequest, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    require_db(request.param)
    tmp = tmp_path_factory.mktemp("chat402")
    env = {**PAY_ENV, "FAREBOX_PAY402_CHAT_MAX_USD": "0.5"}
    with (
        database_url(request.param, tmp) as url,
        running_gateway(url, support.test_catalog(sim.url), extra_env=env) as gw,
    ):
        yield gw


@pytest.fixture(autouse=True)
def ledger_clean_after_each_chat_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """`farebox ledger check` must be clean after every test."""
    yield
    if "chat_pay_gw" in request.fixturenames:
        report = request.getfixturevalue("chat_pay_gw").check()
        assert report.ok, report.problems


def post(gw: Gateway, body: Any, auth: str | None = None, path: str = CHAT) -> httpx.Response:
    headers = {"Authorization": auth} if auth else {}
    with gw.client() as c:
        return c.post(path, json=body, headers=headers)


def left(r: httpx.Response) -> int:
    return round(float(r.headers["x-farebox-credential-balance"]) * NANOS_PER_USD)


def test_keyless_chat_is_402_at_its_worst_case_with_l402_only(chat_pay_gw: Gateway) -> None:
    r = post(chat_pay_gw, ASK)
    assert r.status_code == 402, r.text
    assert set(challenges(r)) == {"L402"}  # the charge intent is for fixed prices only
    body = r.json()
    price = round(float(body["price_usd"]) * NANOS_PER_USD)
    assert price > 50 * OUT and (price - 50 * OUT) % IN == 0  # the prompt and 50 output tokens
    assert "at most" in body["error"]["message"] and "30 days" in body["error"]["message"]


def test_a_paid_token_keeps_what_a_chat_did_not_use_and_draws_it_down(
    chat_pay_gw: Gateway,
) -> None:
    first = post(chat_pay_gw, ASK)
    auth = pay_l402(chat_pay_gw, first)
    price = round(float(first.json()["price_usd"]) * NANOS_PER_USD)
    ph = payment_hash(first)
    balances = []
    for _ in range(3):
        r = post(chat_pay_gw, ASK, auth)
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["finish_reason"] == "stop"
        balances.append(left(r))
    rows = history(chat_pay_gw, ph)
    assert [row[:2] for row in rows] == [("l402", "chat")] * 3
    assert balances == [price - sum(r[3] for r in rows[: i + 1]) for i in range(3)]
    assert credential_nanos(chat_pay_gw, ph) == (balances[-1], 0)
    expires = time.mktime(
        time.strptime(r.headers["x-farebox-credential-expires"], "%Y-%m-%dT%H:%M:%SZ")
    )
    assert abs(expires - time.timezone - (time.time() + 30 * 86_400)) < 120
    # a request asking more than is left is capped to what is left (as an account is) ...
    big = {**ASK, "max_tokens": 4000, "sim": {"output_tokens": 4000}}
    capped = post(chat_pay_gw, big, auth)
    assert capped.status_code == 200, capped.text
    assert capped.json()["choices"][0]["finish_reason"] == "length"
    prompt = rows[0][3] - 5 * OUT
    assert left(capped) < prompt + OUT  # not even a prompt and one token remain
    # ... and then the token is spent: a fresh 402 that says what is left
    spent = post(chat_pay_gw, ASK, auth)
    assert spent.status_code == 402, spent.text
    assert "left" in spent.json()["error"]["message"]
    assert payment_hash(spent) != ph


def test_the_ceiling_lowers_the_cap_to_what_it_pays_for(
    chat_pay_gw: Gateway,
) -> None:
    big = {**ASK, "max_tokens": 4000, "sim": {"output_tokens": 4000}}
    first = post(chat_pay_gw, big)
    assert first.status_code == 402, first.text
    assert first.json()["price_usd"] == "0.5"
    r = post(chat_pay_gw, big, pay_l402(chat_pay_gw, first))
    assert r.status_code == 200, r.text
    usage = r.json()["usage"]
    assert usage["cost"] <= 0.5
    cap = (500_000_000 - IN * usage["prompt_tokens"]) // OUT
    assert usage["completion_tokens"] == cap  # the upstream was sent this cap and used it all


def test_a_bad_keyless_chat_gets_its_400_and_no_invoice(chat_pay_gw: Gateway) -> None:
    before = invoices_issued(chat_pay_gw)
    for bad in ({**ASK, "max_tokens": -1}, {**ASK, "model": "no-such-model"}, {"model": "x"}):
        r = post(chat_pay_gw, bad)
        assert r.status_code in (400, 404), r.text
    assert invoices_issued(chat_pay_gw) == before


def test_a_prompt_dearer_than_the_ceiling_is_400_and_no_invoice(chat_pay_gw: Gateway) -> None:
    before = invoices_issued(chat_pay_gw)
    long = {**ASK, "messages": [{"role": "user", "content": "word " * 600}]}
    r = post(chat_pay_gw, long)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "messages"
    assert invoices_issued(chat_pay_gw) == before


def test_a_streamed_chat_ends_with_what_is_left(chat_pay_gw: Gateway) -> None:
    body = {**ASK, "stream": True}
    first = post(chat_pay_gw, body)
    auth = pay_l402(chat_pay_gw, first)
    r = post(chat_pay_gw, body, auth)
    assert r.status_code == 200, r.text
    events = [b[6:] for b in r.content.split(b"\n\n") if b.startswith(b"data: ")]
    assert events[-2] == b"[DONE]"
    final = orjson.loads(events[-1])
    assert final["object"] == "farebox.payment"
    ph = payment_hash(first)
    assert (
        round(float(final["credential_balance_usd"]) * NANOS_PER_USD)
        == credential_nanos(chat_pay_gw, ph)[0]
    )
    # the header, sent before the stream, showed what was left without this request's hold
    assert left(r) < credential_nanos(chat_pay_gw, ph)[0]


def test_messages_pays_per_request_in_anthropics_envelope(chat_pay_gw: Gateway) -> None:
    body = {
        "model": "claude-test",
        "max_tokens": 40,
        "messages": [{"role": "user", "content": "hello"}],
    }
    first = post(chat_pay_gw, body, path="/v1/messages")
    assert first.status_code == 402, first.text
    assert first.json()["type"] == "error" and first.json()["error"]["type"] == "billing_error"
    assert set(challenges(first)) == {"L402"}
    auth = pay_l402(chat_pay_gw, first)
    client = anthropic.Anthropic(
        base_url=chat_pay_gw.url,
        api_key="unused",
        default_headers={"Authorization": auth, "x-api-key": ""},
        max_retries=0,
    )
    for _ in range(2):
        raw = client.messages.with_raw_response.create(**body)  # type: ignore[call-overload]
        message = raw.parse()
        assert message.content[0].type == "text"
        assert float(raw.headers["x-farebox-credential-balance"]) > 0
    ph = first.json()["error"]["payment_hash"]  # Anthropic's envelope: extras in the error
    assert [row[:2] for row in history(chat_pay_gw, ph)] == [("l402", "chat")] * 2


def test_l402_requests_chats_several_times_on_one_payment(chat_pay_gw: Gateway) -> None:
    l402_requests = require("l402_requests", "l402-requests")
    wallet = l402_wallet(chat_pay_gw)
    client = l402_requests.L402Client(wallet=wallet, timeout=30)
    answers = []
    for _ in range(4):
        r = client.post(chat_pay_gw.url + CHAT, json=ASK)
        assert r.status_code == 200, r.text
        answers.append(left(r))
    assert len(wallet.wallet.paid) == 1  # one Lightning payment, four answers
    assert answers == sorted(answers, reverse=True) and answers[-1] > 0
    # it keeps going until the balance is spent, then pays one fresh invoice by itself
    for _ in range(20):
        r = client.post(chat_pay_gw.url + CHAT, json=ASK)
        assert r.status_code == 200, r.text
        if len(wallet.wallet.paid) == 2:
            break
    assert len(wallet.wallet.paid) == 2
