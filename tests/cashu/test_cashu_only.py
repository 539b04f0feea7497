"""A gateway whose only way to be paid per request is Cashu (no Lightning backend): its 402s
carry X-Cashu alone, Anthropic's /v1/messages is paid with ecash and gives change, and trusted
mints without a real BTC/USD rate refuse to start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from farebox.cli import main
from farebox.db.schema import cashu_receipts
from farebox.sim.server import SimServer

from cashu_support import Mint, Wallet, cashu_catalog, pay, post, running_mint
from pay402_support import GENERATIONS, MEDIUM, PAY_ENV, challenges
from support import database_url, running_gateway


def test_cashu_alone_is_offered_and_pays_for_messages_with_change(
    sim: SimServer, mint: Mint, wallet: Wallet, tmp_path: Path
) -> None:
    env = {"FAREBOX_CASHU_MINTS": mint.url, "FAREBOX_TOPUP_RATES": "BTC=100000"}
    body = {
        "model": "chat-model",
        "max_tokens": 60,
        "messages": [{"role": "user", "content": "hello"}],
        "sim": {"output_tokens": 6},
    }
    with (
        database_url("sqlite", tmp_path) as url,
        running_gateway(url, cashu_catalog(sim.url), extra_env=env) as gw,
    ):
        r = post(gw, "/v1/messages", body)
        assert r.status_code == 402, r.text
        assert challenges(r) == {} and r.headers["x-cashu"].startswith("creqA")
        assert r.json()["error"]["type"] == "billing_error"
        token, sent = wallet.pay(r.headers["x-cashu"], extra=4)
        client = anthropic.Anthropic(  # no key: the token pays
            base_url=gw.url,
            api_key=None,
            default_headers={"X-Cashu": token, "Authorization": anthropic.Omit()},  # type: ignore[dict-item]
            max_retries=0,
        )
        ask = {k: v for k, v in body.items() if k != "sim"}
        raw = client.messages.with_raw_response.create(  # type: ignore[call-overload]
            **ask, extra_body={"sim": body["sim"]}
        )
        assert raw.parse().content[0].type == "text"
        change = wallet.receive(raw.headers["x-cashu"])
        assert 4 <= change < sent
        report = gw.check()
        assert report.ok, report.problems


def test_trusted_mints_need_a_real_rate(sim: SimServer, mint: Mint, tmp_path: Path) -> None:
    with (
        database_url("sqlite", tmp_path) as url,
        pytest.raises(ValueError, match="FAREBOX_TOPUP_RATES"),
        running_gateway(url, cashu_catalog(sim.url), extra_env={"FAREBOX_CASHU_MINTS": mint.url}),
    ):
        pass


def test_secret_rotation_re_encrypts_the_operators_ecash(
    sim: SimServer, mint: Mint, wallet: Wallet, tmp_path: Path
) -> None:
    """`farebox secret rotate` must carry the ecash over: proofs only the old secret could
    decrypt would be money lost. Then the change is still served and the kept ecash melts."""
    env = {**PAY_ENV, "FAREBOX_CASHU_MINTS": mint.url}
    url = f"sqlite:///{tmp_path / 'farebox.db'}"
    with running_gateway(url, cashu_catalog(sim.url), extra_env=env) as gw:
        token, _sent = pay(wallet, gw, GENERATIONS, MEDIUM, extra=2)
        r = post(gw, GENERATIONS, MEDIUM, token)
        assert r.status_code == 200, r.text
        receipt = r.headers["x-cashu-change-id"]
    cli_env = {**env, "FAREBOX_DATABASE_URL": url}
    rotated = CliRunner().invoke(main, ["secret", "rotate"], env=cli_env)
    assert rotated.exit_code == 0, rotated.output
    assert "and 1 Cashu receipts" in rotated.output
    with running_gateway(url, cashu_catalog(sim.url), extra_env=env) as gw:
        with gw.client() as c:
            again = c.get(f"/v1/cashu/change/{receipt}")
        assert again.status_code == 200 and again.json()["token"] == r.headers["x-cashu"]
        assert wallet.receive(again.json()["token"]) == 2
    melted = CliRunner().invoke(main, ["admin", "cashu", "melt"], env=cli_env)
    assert melted.exit_code == 0 and "paid" in melted.output, melted.output


def test_a_mints_input_fee_is_the_payers(sim: SimServer, cashu_venv: Path, tmp_path: Path) -> None:
    """At a mint charging 100 ppk per input, the swap's fee comes off the token: a token of
    exactly the price is too small, one with a sat or two more pays and gets the rest back."""
    with running_mint(cashu_venv, input_fee_ppk=100, key="fee-mint") as fee_mint:
        payer = Wallet(cashu_venv, fee_mint)
        env = {**PAY_ENV, "FAREBOX_CASHU_MINTS": fee_mint.url}
        try:
            payer.mint_sats(300)
            with (
                database_url("sqlite", tmp_path) as url,
                running_gateway(url, cashu_catalog(sim.url), extra_env=env) as gw,
            ):
                exact = payer.send(40)  # the image's price
                r = post(gw, GENERATIONS, MEDIUM, exact)
                assert r.status_code == 400, r.text
                assert r.json()["error"]["code"] == "cashu_amount_insufficient"
                assert "input fee" in r.json()["error"]["message"]
                assert payer.receive(exact) > 0  # still the payer's (less the fee to take it)
                token = payer.send(45)
                r = post(gw, GENERATIONS, MEDIUM, token)
                assert r.status_code == 200, r.text
                [(fee, sats)] = fee_and_sats(gw, r.headers["x-cashu-change-id"])
                assert fee >= 1 and sats == 45 - fee
                assert payer.decode(r.headers["x-cashu"])["amount"] == 45 - fee - 40
                report = gw.check()
                assert report.ok, report.problems
        finally:
            payer.close()


def fee_and_sats(gw: Any, receipt: str) -> list[tuple[int, int]]:
    def read(conn: Any) -> list[tuple[int, int]]:
        rows = conn.execute(
            select(cashu_receipts.c.fee_sats, cashu_receipts.c.sats).where(
                cashu_receipts.c.id == receipt
            )
        )
        return [(int(a), int(b)) for a, b in rows]

    return list(gw.loop.run(gw.services.db.read(read)))
