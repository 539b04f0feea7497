"""A gateway whose only way to be paid per request is Cashu (no Lightning backend): its 402s
carry X-Cashu alone, Anthropic's /v1/messages is paid with ecash and gives change, and trusted
mints without a real BTC/USD rate refuse to start."""

from __future__ import annotations

from pathlib import Path

import anthropic
import pytest
from click.testing import CliRunner

from farebox.cli import main
from farebox.sim.server import SimServer

from cashu_support import Mint, Wallet, cashu_catalog, pay, post
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
