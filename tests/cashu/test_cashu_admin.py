"""The operator's ecash: kept encrypted (never in clear in the database), listed by mint with
`farebox admin cashu`, and melted to the Lightning backend with `farebox admin cashu melt`
(the mint pays a dev-wallet invoice; the unused fee reserve comes back as ecash)."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner
from sqlalchemy import func, select

from farebox.cli import main
from farebox.db.schema import cashu_receipts, devwallet_invoices

from cashu_support import Mint, Wallet, pay, post
from pay402_support import GENERATIONS, MEDIUM, PAY_ENV
from support import Gateway


def cli(gw: Gateway, mint: Mint, *args: str) -> Any:
    env = {
        **PAY_ENV,
        "FAREBOX_DATABASE_URL": gw.settings.database_url,
        "FAREBOX_CASHU_MINTS": mint.url,
    }
    if gw.settings.secret_key:  # PostgreSQL: the same configured secret as the gateway's
        env["FAREBOX_SECRET_KEY"] = gw.settings.secret_key
    return CliRunner().invoke(main, ["admin", "cashu", *args], env=env, catch_exceptions=False)


def holdings(gw: Gateway, mint: Mint) -> dict[str, Any]:
    out = cli(gw, mint, "--json")
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.splitlines()]
    return next(r for r in rows if r["mint_url"] == mint.url)


def test_kept_ecash_is_listed_by_mint_and_melted_to_lightning(
    cashu_gw: Gateway, wallet: Wallet, mint: Mint
) -> None:
    for extra in (7, 0):
        token, _sent = pay(wallet, cashu_gw, GENERATIONS, MEDIUM, extra=extra)
        r = post(cashu_gw, GENERATIONS, MEDIUM, token)
        assert r.status_code == 200, r.text
        if extra:
            assert wallet.receive(r.headers["x-cashu"]) == extra

    def vaults(conn: Any) -> list[str]:
        return [row[0] for row in conn.execute(select(cashu_receipts.c.vault))]

    stored = cashu_gw.loop.run(cashu_gw.services.db.read(vaults))
    assert stored and all('"secret"' not in v and '"C"' not in v for v in stored)  # encrypted

    before = holdings(cashu_gw, mint)
    assert before["kept_sats"] == 80 and before["melted_sats"] == 0  # two images at 40 sats
    listing = cli(cashu_gw, mint)
    assert mint.url in listing.output and "80" in listing.output

    def invoices(conn: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(devwallet_invoices)).scalar())

    invoices_before = cashu_gw.loop.run(cashu_gw.services.db.read(invoices))
    melted = cli(cashu_gw, mint, "melt")
    assert melted.exit_code == 0, melted.output
    assert "paid" in melted.output
    after = holdings(cashu_gw, mint)
    assert after["melted_sats"] == 80
    assert cashu_gw.loop.run(cashu_gw.services.db.read(invoices)) > invoices_before
    # paid out + the mint's fees + the unused fee reserve, back as the operator's own ecash
    paid_out = int(melted.output.split(" sats paid")[0].rsplit(" ", 1)[1])
    fees = int(melted.output.split(" sats in fees")[0].rsplit(" ", 1)[1])
    assert paid_out > 70 and paid_out + fees + after["kept_sats"] == 80
    # nothing left to melt but that change; melting again takes it (or says there is nothing)
    again = cli(cashu_gw, mint, "melt")
    assert again.exit_code in (0, 1), again.output


def test_ledger_check_proves_each_receipts_money_in_and_change_out(
    cashu_gw: Gateway, wallet: Wallet
) -> None:
    token, _sent = pay(wallet, cashu_gw, GENERATIONS, MEDIUM, extra=3)
    r = post(cashu_gw, GENERATIONS, MEDIUM, token)
    assert r.status_code == 200, r.text
    wallet.receive(r.headers["x-cashu"])
    receipt = r.headers["x-cashu-change-id"]
    assert cashu_gw.check().ok

    def change_sats(value: int) -> Any:
        def write(conn: Any) -> None:
            conn.execute(
                cashu_receipts.update()
                .where(cashu_receipts.c.id == receipt)
                .values(change_sats=value)
            )

        return write

    cashu_gw.loop.run(cashu_gw.services.db.write(change_sats(4)))  # a sat more than paid back
    report = cashu_gw.check()
    assert [p for p in report.problems if receipt in p], report.problems
    cashu_gw.loop.run(cashu_gw.services.db.write(change_sats(3)))
