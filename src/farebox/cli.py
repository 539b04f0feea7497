"""The `farebox` command: serve, sim, admin, ledger."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import uuid
from datetime import UTC, datetime
from typing import ClassVar

import click
import orjson

from farebox import __version__
from farebox.app import create_app, prepare_database
from farebox.cashu.cli import cashu_command
from farebox.catalog.errors import CatalogError
from farebox.catalog.loader import load_catalog
from farebox.db.cli import db_command
from farebox.db.database import Database
from farebox.db.migrate import upgrade_in_child
from farebox.devpay import DEFAULT_URL, DevPayError, pay_through_gateway
from farebox.keys.credentials import account_named
from farebox.keys.instance_secret import SecretSetupError, instance_secret
from farebox.keys.secret_cli import secret_command
from farebox.keys.secrets import KeyCipher
from farebox.keys.store import create_account_with_key
from farebox.ledger import ops
from farebox.ledger.check import check_ledger
from farebox.ledger.types import GRANTS, Code, Transfer
from farebox.money import MoneyError, format_usd, nanos_to_usd, usd_to_nanos
from farebox.net.connections import raise_open_file_limit, uvicorn_config
from farebox.net.drain_server import serve_draining
from farebox.net.egress import EgressProxies
from farebox.net.prefork import serve_workers
from farebox.observe.config import ObserveConfig
from farebox.observe.multiproc import ENV as MULTIPROC_ENV
from farebox.observe.multiproc import prepare_for_workers
from farebox.payments import invoices as topup_invoices
from farebox.payments.config import PaymentsConfig
from farebox.settings import Settings
from farebox.startup import (
    PortBusy,
    check_port_free,
    listen_socket,
    startup_summary,
)


def _settings() -> Settings:
    """The environment's settings; a bad value stops the command with a message naming it."""
    try:
        settings = Settings.from_env()
        ObserveConfig.from_env(settings.extra_env)  # checked with the others, before anything
        return settings
    except ValueError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


def _open(settings: Settings) -> tuple[Database, str]:
    """The migrated database and the instance secret; a missing or wrong secret stops the
    command with a one-line message saying what to do."""
    db = prepare_database(settings)
    try:
        return db, instance_secret(settings, db)
    except SecretSetupError as exc:
        db.close()
        raise click.ClickException(f"instance secret: {exc}") from exc


class _LazyGroup(click.Group):
    """Subcommands whose modules load only when they run (or --help lists them): `farebox sim`
    pulls in the whole simulator (PyAV, Pillow), which `farebox serve` must not carry."""

    LAZY: ClassVar[dict[str, str]] = {
        "sim": "farebox.sim.cli:sim_command",
        "private-proxy": "farebox.private.cli:private_proxy_command",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.LAZY:
            module, name = self.LAZY[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(module), name)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="farebox")
def main() -> None:
    """farebox: a self-hostable pay-per-query AI API.

    Configuration comes from FAREBOX_* environment variables (see the README); flags override.
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=int,
    help="Worker processes, forked after the app and its token tables are loaded (shared).",
)
@click.option(
    "--demo",
    is_flag=True,
    help="Also start `farebox sim` on a free port, serve a catalog routed to it, and create a "
    "funded demo account (printed with a curl line to try and the dashboard's address).",
)
@click.option("--database-url", default=None, help="Overrides FAREBOX_DATABASE_URL.")
@click.option("--catalog", default=None, help="Operator catalog file (overrides FAREBOX_CATALOG).")
@click.option(
    "--default-max-tokens",
    default=None,
    type=click.IntRange(min=1),
    help="Output tokens a chat request without max_tokens is sent and held for, per choice "
    "(overrides FAREBOX_DEFAULT_MAX_TOKENS, default 4096; never above the model's max output "
    "or what the customer can pay for).",
)
@click.option("--log-level", default="warning", show_default=True)
def serve(
    host: str,
    port: int,
    workers: int,
    demo: bool,
    database_url: str | None,
    catalog: str | None,
    default_max_tokens: int | None,
    log_level: str,
) -> None:
    """Run the gateway. Migrations run at start.

    SIGTERM drains: /readyz answers 503 (for FAREBOX_DRAIN_NOTICE_S while still serving), new
    connections are refused, requests in flight get FAREBOX_DRAIN_S (30) to finish, streams
    still running then are ended and billed for what they delivered, and the process exits 0.
    """
    if database_url:
        os.environ["FAREBOX_DATABASE_URL"] = database_url
    if catalog:
        os.environ["FAREBOX_CATALOG"] = catalog
    if default_max_tokens:
        os.environ["FAREBOX_DEFAULT_MAX_TOKENS"] = str(default_max_tokens)
    settings = _settings().with_overrides(host=host, port=port, workers=workers)
    try:  # HTTPS_PROXY and friends: a proxy URL we cannot use stops the start, named
        EgressProxies.from_environ()
    except ValueError as exc:
        raise click.ClickException(f"egress proxy: {exc}") from exc
    if demo and workers > 1:
        raise click.UsageError(
            "--demo runs in one process (its simulator and demo account live there): drop "
            "--workers, or run `farebox serve --workers N` without --demo."
        )
    try:  # before anything is created: a busy port must not cost a database or an account
        # --demo and --workers serve a socket bound now (the workers inherit it)
        sock = listen_socket(host, port) if demo or workers > 1 else None
        if sock is None:
            check_port_free(host, port)
    except PortBusy as exc:
        raise click.ClickException(str(exc)) from exc
    try:  # in a child process: the serving one never imports Alembic
        upgrade_in_child(settings.database_url)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    _open(settings)[0].close()
    if demo and sock is not None:
        generated = not settings.admin_token  # enable_dashboard makes one for the demo if unset
        # the demo's simulator, enclave and catalogs: imported only for --demo (about 28 MB
        # that a production process would otherwise keep)
        demo_module = importlib.import_module("farebox.demo_serve")
        demo_settings = demo_module.enable_dashboard(demo_module.enable_dev_wallet(settings))
        asyncio.run(demo_module.serve_demo(demo_settings, log_level, sock, generated))
        return
    try:
        # genai-prices is read in a child: the serving process never carries it (cost_refs.py)
        models = load_catalog(settings.catalog_path, env=settings.extra_env, costs_in_child=True)
    except CatalogError as exc:
        raise click.ClickException(f"catalog: {exc}") from exc
    click.echo(startup_summary(settings, models, PaymentsConfig.from_env(settings.extra_env)))
    raise_open_file_limit()  # before the connection cap is worked out from it
    if workers > 1 or os.environ.get(MULTIPROC_ENV):
        prepare_for_workers()  # the workers' shared metrics directory (observe/multiproc.py)
    if sock is not None:
        # loaded once and forked: the workers share the token tables (net/prefork.py)
        sys.exit(serve_workers(settings, models, sock, workers, log_level))
    app = create_app(settings, catalog=models)
    config = uvicorn_config(app, settings, log_level)
    serve_draining(config, settings.drain_s, settings.drain_notice_s)


main.add_command(secret_command, "secret")
main.add_command(db_command, "db")


@main.group()
def admin() -> None:
    """Operator commands that work on the database directly."""


@admin.command("grant")
@click.argument("account")
@click.argument("usd")
def admin_grant(account: str, usd: str) -> None:
    """Grant USD of credit to ACCOUNT, its public id (acct_…) or its credit_id (recorded as a
    grants -> customer transfer)."""
    try:
        nanos = usd_to_nanos(usd)
    except MoneyError as exc:
        raise click.BadParameter(str(exc), param_hint="USD") from exc
    if nanos <= 0:
        raise click.BadParameter("must be greater than zero", param_hint="USD")
    db = prepare_database(_settings())
    try:
        account_id = db.read_sync(account_named, account)
        if account_id is None:
            raise click.ClickException("no customer account with that account id or credit_id")
        transfer = Transfer("grant." + uuid.uuid4().hex, GRANTS, account_id, nanos, Code.GRANT)
        db.write_sync(ops.transfer, transfer)
        balance = db.read_sync(ops.get_balance, account_id)
        assert balance is not None
        click.echo(
            f"granted ${nanos_to_usd(nanos)} to {account_id}; "
            f"balance ${nanos_to_usd(balance.balance)}"
        )
    finally:
        db.close()


@admin.command("create-account")
@click.option("--usd", default="0", show_default=True, help="Credit to grant at once.")
def admin_create_account(usd: str) -> None:
    """Create an account with one API key; print {credit_id, account_id, api_key} as JSON."""
    db, secret = _open(_settings())
    try:
        new = db.write_sync(create_account_with_key, KeyCipher(secret))
        nanos = usd_to_nanos(usd)
        if nanos > 0:
            db.write_sync(
                ops.transfer,
                Transfer("grant." + uuid.uuid4().hex, GRANTS, new.account_id, nanos, Code.GRANT),
            )
        shown = {"credit_id": new.credit_id, "account_id": new.account_id, "api_key": new.api_key}
        click.echo(orjson.dumps(shown).decode())
    finally:
        db.close()


@admin.command("topups")
@click.option("--status", default=None, help="Only invoices with this status (pending, paid, ...).")
@click.option("--account", "account_id", default=None, help="Only this account (acct_…).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def admin_topups(status: str | None, account_id: str | None, limit: int, as_json: bool) -> None:
    """List top-up invoices, newest first: status, method, amount paid in and in USD."""
    db = prepare_database(_settings())
    try:
        rows = db.read_sync(
            lambda conn: topup_invoices.list_invoices(
                conn, account_id=account_id, status=status, limit=limit
            )
        )
    finally:
        db.close()
    if as_json:
        for inv in rows:
            click.echo(orjson.dumps(topup_invoices.admin_view(inv)).decode())
        return
    if not rows:
        click.echo("no top-up invoices")
        return
    click.echo(
        f"{'created (UTC)':<20} {'invoice':<28} {'status':<10} {'method':<14} "
        f"{'amount':>18} {'usd':>12}  {'backend':<9} account"
    )
    for inv in rows:
        created = datetime.fromtimestamp(inv.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        flag = " (overpaid)" if inv.overpaid else ""
        click.echo(
            f"{created:<20} {inv.id:<28} {inv.status:<10} {inv.method:<14} "
            f"{inv.amount + ' ' + inv.currency:>18} {'$' + format_usd(inv.usd_nanos):>12}  "
            f"{inv.backend:<9} {inv.account_id}{flag}"
        )


admin.add_command(cashu_command, "cashu")


@main.group()
def dev() -> None:
    """Development tools: the dev wallet (demo and tests only)."""


@dev.command("pay")
@click.argument("bolt11")
@click.option(
    "--url",
    default=DEFAULT_URL,
    show_default=True,
    envvar="FAREBOX_URL",
    help="The running gateway (farebox serve --demo prints it); also FAREBOX_URL.",
)
@click.option(
    "--admin-token",
    envvar="FAREBOX_ADMIN_TOKEN",
    help="The gateway's admin token (farebox serve --demo prints it); also FAREBOX_ADMIN_TOKEN.",
)
def dev_pay(bolt11: str, url: str, admin_token: str | None) -> None:
    """Have the running gateway's dev wallet pay BOLT11 (no real money moves); a top-up invoice
    is credited at once. Works from any folder: it asks the gateway, over loopback."""
    try:
        paid = pay_through_gateway(url, admin_token, bolt11)
    except DevPayError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"paid; preimage {paid.preimage}")
    if paid.topup is not None:
        what = "credited" if paid.topup["credited"] else "already credited"
        click.echo(
            f"top-up {paid.topup['invoice_id']}: {what} ${paid.topup['amount_usd']} "
            f"to {paid.topup['account_id']}"
        )


@main.group()
def ledger() -> None:
    """Ledger tools."""


@ledger.command("check")
def ledger_check() -> None:
    """Prove the ledger's invariants; exit 1 naming each broken one.

    Also shows the operator's losses: usage upstreams reported beyond what their customers
    could be charged (never a fault of the ledger; listed by GET /admin/losses).
    """
    db = prepare_database(_settings())
    try:
        report = db.read_sync(check_ledger)
    finally:
        db.close()
    losses = report.losses
    if losses.requests:
        click.echo(
            f"operator losses: {losses.requests} requests whose upstream reported more than was "
            f"charged: ${format_usd(losses.unbilled)} unbilled at the sale price, "
            f"${format_usd(losses.unbilled_cost)} at upstream cost"
            + (f" ({losses.without_cost} of unknown cost)" if losses.without_cost else "")
        )
    else:
        click.echo("operator losses: none")
    if report.ok:
        click.echo(f"ledger ok: {report.accounts} accounts, {report.transfers} transfers")
        return
    for problem in report.problems:
        click.echo(f"BROKEN: {problem}", err=True)
    sys.exit(1)


if __name__ == "__main__":
    main()
