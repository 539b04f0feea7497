"""`farebox admin cashu`: the operator's ecash by mint, and melting it to Lightning."""

from __future__ import annotations

import asyncio
from dataclasses import asdict

import click
import orjson

from farebox.app import prepare_database
from farebox.cashu import store
from farebox.cashu.config import CashuConfig
from farebox.cashu.melt import Melted, melt_mint, settle_stale_change
from farebox.cashu.mint import MintClient
from farebox.db.database import Database
from farebox.keys.instance_secret import SecretSetupError, instance_secret
from farebox.keys.secrets import KeyCipher
from farebox.payments.config import PaymentsConfig, build_topups
from farebox.payments.types import Method
from farebox.settings import Settings


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


@click.group("cashu", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per mint.")
@click.pass_context
def cashu_command(ctx: click.Context, as_json: bool) -> None:
    """The operator's ecash by mint, in sats: kept (the operator's, after change), in flight
    (a request still running, or change never issued), melting, melted, and swaps whose answer
    was lost. `farebox admin cashu melt` pays it out to the Lightning backend."""
    if ctx.invoked_subcommand is not None:
        return
    db = prepare_database(_settings())
    try:
        holdings = db.read_sync(store.holdings)
    finally:
        db.close()
    if as_json:
        for h in holdings:
            click.echo(orjson.dumps(asdict(h)).decode())
        return
    if not holdings:
        click.echo("no ecash received")
        return
    click.echo(
        f"{'mint':<40} {'receipts':>8} {'kept':>10} {'in flight':>10} {'melting':>10} "
        f"{'melted':>10} {'lost swaps':>10}"
    )
    for h in holdings:
        click.echo(
            f"{h.mint_url[:40]:<40} {h.receipts:>8} {h.kept_sats:>10} {h.in_flight_sats:>10} "
            f"{h.melting_sats:>10} {h.melted_sats:>10} {h.swapping:>10}"
        )


@cashu_command.command("melt")
@click.option("--mint", "only", default=None, help="Only this mint (one of FAREBOX_CASHU_MINTS).")
def cashu_melt(only: str | None) -> None:
    """Melt the kept ecash of each trusted mint: the mint pays an invoice of the Lightning
    backend that serves top-ups (LNbits, BTCPay, or the dev wallet)."""
    settings = _settings()
    try:
        config = CashuConfig.from_env(settings.extra_env)
    except ValueError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc
    mints = [m for m in config.mints if only is None or m == only.rstrip("/")]
    if not mints:
        raise click.ClickException("no such trusted mint: set FAREBOX_CASHU_MINTS")
    db = prepare_database(settings)
    try:
        results = asyncio.run(_melt_all(db, settings, mints, config))
    finally:
        db.close()
    failed = False
    for r in results:
        click.echo(
            f"{r.mint_url}: {r.state.lower()}: {r.receipts} receipts, {r.sats} sats melted, "
            f"{r.invoice_sats} sats paid to the Lightning backend, {r.fee_sats} sats in fees"
            + (f" ({r.detail})" if r.detail else "")
        )
        failed = failed or r.state in ("UNPAID", "PENDING")
    if failed:
        raise SystemExit(1)


async def _melt_all(
    db: Database, settings: Settings, mints: list[str], config: CashuConfig
) -> list[Melted]:
    try:
        secret = instance_secret(settings, db)
    except SecretSetupError as exc:
        raise click.ClickException(f"instance secret: {exc}") from exc
    topups = build_topups(PaymentsConfig.from_env(settings.extra_env), db, secret)
    offer = topups.offers.get(Method.LIGHTNING)
    if offer is None:
        await topups.close()
        raise click.ClickException("no Lightning backend to melt to (see FAREBOX_LNBITS_URL)")
    cipher = KeyCipher(secret)
    # a request that ran longer than the hold timeout is over (the sweeper has resolved it)
    await settle_stale_change(db, cipher, config.change_keep_s, 2 * settings.hold_timeout_s)
    results = []
    try:
        for url in mints:
            client = MintClient(url, config.mint_timeout_s)
            try:
                results.append(await melt_mint(db, cipher, client, offer.backend))
            finally:
                await client.close()
    finally:
        await topups.close()
    return results
