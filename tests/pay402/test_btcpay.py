"""402 invoices from BTCPay (its Greenfield contract fake): the challenge carries BTCPay's BOLT11,
priced in BTC for the exact sats. (The fake cannot pay its own invoices, so redemption is tested
with the dev wallet and a real LNbits.)"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from bolt11 import decode

from farebox.sim.server import SimServer

from btcpay_fake import BTCPayFake
from media_support import media_catalog, media_env
from pay402_support import MEDIUM, challenges, post, unb64url_json
from payments_support import BTCPAY_KEY, BTCPAY_SECRET, BTCPAY_STORE, btcpay_env
from support import Gateway, database_url, running_gateway, serve_app


@pytest.fixture(scope="module")
def btcpay_pay_gw(
    sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gateway, BTCPayFake]]:
    fake = BTCPayFake(BTCPAY_STORE, BTCPAY_KEY, BTCPAY_SECRET)
    tmp = tmp_path_factory.mktemp("pay402-btcpay")
    with serve_app(fake.app) as btcpay_url:
        fake.base_url = btcpay_url
        env = {
            **media_env(tmp),
            **btcpay_env(btcpay_url),
            "FAREBOX_PAY402_CHALLENGES_PER_MIN": "0",
        }
        with (
            database_url("sqlite", tmp) as url,
            running_gateway(url, media_catalog(sim.url), extra_env=env) as gw,
        ):
            yield gw, fake
            assert gw.check().ok


def test_challenge_carries_a_btcpay_lightning_invoice(
    btcpay_pay_gw: tuple[Gateway, BTCPayFake],
) -> None:
    gw, fake = btcpay_pay_gw
    r = post(gw, MEDIUM)
    assert r.status_code == 402, r.text
    invoice = challenges(r)["L402"]["invoice"]
    decoded = decode(invoice)
    assert decoded.currency == "bc" and int(decoded.amount_msat or 0) == 40_000
    assert r.json()["payment_hash"] == decoded.payment_hash
    request = unb64url_json(challenges(r)["Payment"]["request"])
    assert request["methodDetails"]["network"] == "mainnet"
    assert request["methodDetails"]["invoice"] == invoice
    created = fake.create_requests[-1]
    assert created["currency"] == "BTC" and Decimal(str(created["amount"])) == Decimal("4E-7")
    assert created["checkout"]["paymentMethods"] == ["BTC-LN"]
