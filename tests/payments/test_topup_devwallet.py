"""Top-ups through the dev wallet: real BOLT11 invoices, paid, credited exactly once."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from bolt11 import Bolt11, MilliSatoshi, TagChar, Tags, decode, encode
from click.testing import CliRunner
from coincurve import PrivateKey
from sqlalchemy import update

from farebox.cli import main as cli
from farebox.db.database import Database
from farebox.db.schema import devwallet_invoices
from farebox.demo import demo_banner, enable_dev_wallet
from farebox.payments import invoices
from farebox.payments.config import PaymentsConfig
from farebox.payments.invoices import topup_transfer_id
from farebox.payments.types import BackendStatus, PayState
from farebox.settings import Settings

from payments_support import (
    BTC_USD,
    assert_clean,
    bearer,
    create_topup,
    topup_status,
    topup_transfers,
)
from support import ADMIN_TOKEN, NANOS, Gateway


def cli_env(gw: Gateway) -> dict[str, str]:
    """What the CLI needs: the gateway (dev pay asks it) and its database (admin topups)."""
    return {**gw.cli_env(), "FAREBOX_URL": gw.url, "FAREBOX_ADMIN_TOKEN": ADMIN_TOKEN}


def dev_pay(gw: Gateway, bolt11: str) -> str:
    return gw.loop.run(gw.services.topups.backend("devwallet").pay(bolt11))


def test_payment_methods_list_limits_and_currencies(dev_gateway: Gateway) -> None:
    with dev_gateway.client() as c:
        r = c.get("/topup/payment-methods")
    assert r.status_code == 200
    methods = {m["method"]: m for m in r.json()["data"]}
    assert set(methods) == {"btc-lightning", "btc", "ltc", "lbtc", "xmr"}
    ln = methods["btc-lightning"]
    assert ln["enabled"] is True and ln["backend"] == "devwallet"
    assert ln["currencies"] == ["SATS", "BTC", "USD"]
    assert 0 < ln["min_usd"] < ln["max_usd"]
    assert methods["xmr"]["enabled"] is False  # only BTCPay offers on-chain methods
    # sats and BTC are bitcoin's units: Litecoin and Monero top-ups are stated in USD
    assert methods["btc"]["currencies"] == methods["lbtc"]["currencies"] == ["SATS", "BTC", "USD"]
    assert methods["ltc"]["currencies"] == methods["xmr"]["currencies"] == ["USD"]


def test_lightning_topup_end_to_end_credits_once(dev_gateway: Gateway) -> None:
    credit_id, key = dev_gateway.create_account()
    r = create_topup(dev_gateway, bearer(key), body={"amount": 1000, "currency": "SATS"})
    assert r.status_code == 201, r.text
    inv = r.json()
    assert inv["status"] == "pending" and inv["method"] == "btc-lightning"
    assert inv["amount"] == "1000" and inv["currency"] == "SATS"
    assert inv["amount_usd"] == 1.0  # 1000 sats at $100k/BTC, fixed now
    assert inv["bolt11"] == inv["payment_request"] and inv["bolt11"].startswith("lnbcrt")
    decoded = decode(inv["bolt11"])
    assert decoded.amount_msat == 1_000_000 and not decoded.has_expired()
    assert inv["expires_in"] > 0

    pending = topup_status(dev_gateway, bearer(key), inv["invoice_id"]).json()
    assert pending["status"] == "pending"
    assert dev_gateway.nanos(credit_id) == (0, 0)

    dev_pay(dev_gateway, inv["bolt11"])
    paid = topup_status(dev_gateway, bearer(key), inv["invoice_id"]).json()
    assert paid["status"] == "paid" and paid["credited_usd"] == 1.0 and paid["paid_at"]
    assert paid["expires_in"] == 0  # nothing left to pay: the countdown stopped
    assert dev_gateway.nanos(credit_id) == (NANOS, 0)
    # again and again: still once
    for _ in range(3):
        assert topup_status(dev_gateway, bearer(key), inv["invoice_id"]).json()["status"] == "paid"
    assert dev_gateway.nanos(credit_id) == (NANOS, 0)
    expected_id = topup_transfer_id("devwallet", decoded.payment_hash)
    assert topup_transfers(dev_gateway, credit_id) == [(expected_id, NANOS)]
    assert dev_gateway.balance(credit_id)["balance"] == 1.0
    assert_clean(dev_gateway)


def test_every_auth_form_and_currency(dev_gateway: Gateway) -> None:
    credit_id, key = dev_gateway.create_account()
    cases = [
        ({"Authorization": f"Bearer {key}"}, {"amount": "0.00002", "currency": "BTC"}, 2000),
        ({"api-key": key}, {"amount": 2.5, "currency": "USD"}, 2500),
        ({"x-credit-id": credit_id}, {"amount": 300, "currency": "sats"}, 300),
    ]
    total = 0
    for headers, body, sats in cases:
        r = create_topup(dev_gateway, headers, body=body)
        assert r.status_code == 201, r.text
        inv = r.json()
        assert inv["amount_sats"] == sats
        assert decode(inv["bolt11"]).amount_msat == sats * 1000
        usd = Decimal(sats) * BTC_USD / 100_000_000
        if body["currency"] == "USD":
            usd = Decimal(str(body["amount"]))
        assert Decimal(str(inv["amount_usd"])) == usd
        dev_pay(dev_gateway, inv["bolt11"])
        assert topup_status(dev_gateway, headers, inv["invoice_id"]).json()["status"] == "paid"
        total += int(usd * NANOS)
    assert dev_gateway.nanos(credit_id) == (total, 0)
    assert_clean(dev_gateway)


def test_usd_amount_is_exact_not_float(dev_gateway: Gateway) -> None:
    credit_id, key = dev_gateway.create_account()
    r = create_topup(dev_gateway, bearer(key), body=b'{"amount": 0.29, "currency": "USD"}')
    assert r.status_code == 201, r.text
    inv = r.json()
    assert inv["amount"] == "0.29"
    assert inv["amount_sats"] == 290  # $0.29 at $100k/BTC, rounded up to a whole sat
    dev_pay(dev_gateway, inv["bolt11"])
    topup_status(dev_gateway, bearer(key), inv["invoice_id"])
    assert dev_gateway.nanos(credit_id) == (290_000_000, 0)  # not 289999999.99...
    assert_clean(dev_gateway)


@pytest.mark.slow  # concurrency or timeouts: seconds each
def test_fifty_concurrent_status_calls_and_polls_credit_once(dev_gateway: Gateway) -> None:
    credit_id, key = dev_gateway.create_account()
    inv = create_topup(dev_gateway, bearer(key), body={"amount": 5000, "currency": "SATS"}).json()
    dev_pay(dev_gateway, inv["bolt11"])

    def status(_: int) -> str:
        return str(topup_status(dev_gateway, bearer(key), inv["invoice_id"]).json()["status"])

    with ThreadPoolExecutor(50) as pool:
        polls = [pool.submit(dev_gateway.loop.run, dev_gateway.services.topups.poll_once())]
        results = list(pool.map(status, range(50)))
        for p in polls:
            p.result()
    assert set(results) == {"paid"}
    assert dev_gateway.nanos(credit_id) == (5 * NANOS, 0)
    assert len(topup_transfers(dev_gateway, credit_id)) == 1
    assert_clean(dev_gateway)


@pytest.mark.slow  # concurrency or timeouts: seconds each
def test_fifty_replicas_racing_to_credit_credit_once(dev_gateway: Gateway) -> None:
    """Separate connection pools (as separate replicas would have) all apply `paid` at once."""
    credit_id, key = dev_gateway.create_account()
    inv = create_topup(dev_gateway, bearer(key), body={"amount": 1, "currency": "USD"}).json()
    url = dev_gateway.settings.database_url
    replicas = [Database(url, threads=1) for _ in range(10)]

    async def race() -> list[bool]:
        paid = BackendStatus(PayState.PAID)
        results = await asyncio.gather(
            *(
                replicas[i % len(replicas)].write(invoices.apply_status, inv["invoice_id"], paid)
                for i in range(50)
            )
        )
        return [credited for _, credited in results]

    try:
        credited = asyncio.run(race())
    finally:
        for db in replicas:
            db.close()
    assert credited.count(True) == 1
    assert dev_gateway.nanos(credit_id) == (NANOS, 0)
    assert_clean(dev_gateway)


def test_poller_credits_without_any_status_call(dev_gateway: Gateway) -> None:
    credit_id, key = dev_gateway.create_account()
    inv = create_topup(dev_gateway, bearer(key), body={"amount": 700, "currency": "SATS"}).json()
    dev_pay(dev_gateway, inv["bolt11"])
    deadline = time.time() + 10
    while time.time() < deadline and dev_gateway.nanos(credit_id)[0] == 0:
        time.sleep(0.1)
    assert dev_gateway.nanos(credit_id) == (700_000_000, 0)
    assert_clean(dev_gateway)


def test_expired_invoice_is_not_credited_and_cannot_be_paid(dev_gateway: Gateway) -> None:
    credit_id, key = dev_gateway.create_account()
    inv = create_topup(dev_gateway, bearer(key), body={"amount": 1000, "currency": "SATS"}).json()
    payment_hash = decode(inv["bolt11"]).payment_hash

    def expire(conn: object) -> None:
        conn.execute(  # type: ignore[attr-defined]
            update(devwallet_invoices)
            .where(devwallet_invoices.c.payment_hash == payment_hash)
            .values(expires_at=time.time() - 1)
        )

    dev_gateway.loop.run(dev_gateway.services.db.write(expire))
    assert topup_status(dev_gateway, bearer(key), inv["invoice_id"]).json()["status"] == "expired"
    result = CliRunner().invoke(cli, ["dev", "pay", inv["bolt11"]], env=cli_env(dev_gateway))
    assert result.exit_code != 0 and "expired" in result.output
    assert dev_gateway.nanos(credit_id) == (0, 0)
    assert_clean(dev_gateway)


def test_cli_dev_pay_credits_and_admin_topups_lists_it(dev_gateway: Gateway) -> None:
    credit_id, key = dev_gateway.create_account()
    inv = create_topup(dev_gateway, bearer(key), body={"amount": "1.5", "currency": "USD"}).json()
    env = cli_env(dev_gateway)
    result = CliRunner().invoke(cli, ["dev", "pay", inv["bolt11"]], env=env)
    assert result.exit_code == 0, result.output
    account_id = dev_gateway.account_id(credit_id)
    assert f"credited $1.5 to {account_id}" in result.output
    assert credit_id not in result.output
    again = CliRunner().invoke(cli, ["dev", "pay", inv["bolt11"]], env=env)
    assert again.exit_code == 0 and "already credited" in again.output
    assert dev_gateway.nanos(credit_id) == (1_500_000_000, 0)
    assert topup_status(dev_gateway, bearer(key), inv["invoice_id"]).json()["status"] == "paid"

    listing = CliRunner().invoke(cli, ["admin", "topups", "--account", account_id], env=env)
    assert listing.exit_code == 0, listing.output
    assert inv["invoice_id"] in listing.output and "paid" in listing.output
    assert "1.5 USD" in listing.output and "$1.5" in listing.output
    as_json = CliRunner().invoke(
        cli, ["admin", "topups", "--account", account_id, "--json"], env=env
    )
    assert as_json.exit_code == 0, as_json.output
    row = json.loads(as_json.output.splitlines()[0])
    api = topup_status(dev_gateway, bearer(key), inv["invoice_id"]).json()
    # the same ISO 8601 times the API shows, not epoch floats
    for field in ("created_at", "expires_at", "paid_at"):
        assert row[field] == api[field] and row[field].endswith("Z"), field
    assert_clean(dev_gateway)


def test_dev_pay_refuses_what_the_dev_wallet_did_not_issue(dev_gateway: Gateway) -> None:
    env = cli_env(dev_gateway)
    garbage = CliRunner().invoke(cli, ["dev", "pay", "lnbcrt1garbage"], env=env)
    assert garbage.exit_code != 0 and "Not a valid BOLT11" in garbage.output
    foreign = encode(
        Bolt11(
            currency="bcrt",
            amount_msat=MilliSatoshi(1000),
            date=int(time.time()),
            tags=_tags(),
        ),
        PrivateKey().to_hex(),
    )
    refused = CliRunner().invoke(cli, ["dev", "pay", foreign], env=env)
    assert refused.exit_code != 0 and "not issued by this farebox" in refused.output


def _tags() -> Tags:
    tags = Tags()
    tags.add(TagChar.payment_hash, "00" * 32)
    tags.add(TagChar.payment_secret, "11" * 32)
    tags.add(TagChar.description, "someone else's")
    return tags


def test_demo_turns_the_dev_wallet_on() -> None:
    settings = enable_dev_wallet(Settings(extra_env={"X": "1"}))
    assert settings.extra_env == {"X": "1", "FAREBOX_DEV_WALLET": "1"}
    banner = demo_banner(settings, "http://sim", "cid", "sk-x", "acct_x")
    assert "/topup/create/btc-lightning" in banner and " dev pay " in banner
    assert PaymentsConfig.from_env(settings.extra_env).dev_wallet is True
    assert PaymentsConfig.from_env({}).dev_wallet is False  # off unless enabled
