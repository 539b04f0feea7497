"""Test harness: real databases (SQLite file, a fresh PostgreSQL database), a real simulator and
a real gateway, each served over loopback HTTP from its own thread."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import httpx
import psycopg
import pytest
import uvicorn

from farebox.app import create_app
from farebox.catalog.loader import catalog_from_dict
from farebox.catalog.model import Catalog
from farebox.data.model import DataCatalog
from farebox.db.database import Database
from farebox.keys.credentials import account_for_credit
from farebox.ledger.check import CheckReport, check_ledger
from farebox.net.connections import uvicorn_options
from farebox.settings import Settings
from farebox.sim.config import SimConfig
from farebox.sim.server import SimServer, start_sim

T = TypeVar("T")

PG_ADMIN_URL = os.environ.get("FAREBOX_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN_TOKEN = "test-admin-token"
# The instance secret of PostgreSQL gateways (required there); SQLite ones use their secret file.
TEST_SECRET = "test-instance-secret-" + "x" * 24
NANOS = 1_000_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoopThread:
    """An asyncio loop running in a daemon thread; run coroutines on it from sync tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Awaitable[T], timeout: float = 60) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return fut.result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


def run_python(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh Python (this one's interpreter and environment): for what must be
    seen from a clean process (imports, the collector's settings); raises if it fails."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, check=True
    )


def missing_tool(reason: str) -> NoReturn:
    """Skip a test whose outside program, package or service is not here; under CI=true (where
    .ci/run installs and starts them all) fail instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI requires it (.ci/run installs it)")
    pytest.skip(reason)


def require_db(kind: str) -> None:
    """Skip a PostgreSQL test when the server is unreachable (fail instead under CI=true)."""
    if kind == "postgresql" and not pg_available():
        missing_tool("PostgreSQL on 127.0.0.1:5432 is unreachable")


def pg_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test module; dropped afterwards."""
    name = "farebox_t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@contextmanager
def database_url(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'farebox.db'}"
        return
    with fresh_pg_database() as url:
        yield url


# Prices chosen so costs are easy to check: $1 per 1M input tokens, $2 per 1M output tokens.
TEST_PRICE = {"input_per_1m": "1", "output_per_1m": "2"}
# The same, with cache reads at $0.10 and cache writes at $1.25 per 1M tokens.
CLAUDE_TEST_PRICE = {**TEST_PRICE, "cache_read_per_1m": "0.1", "cache_write_per_1m": "1.25"}


def test_catalog(sim_url: str) -> Catalog:
    base = {
        "provider": "Test",
        "type": "chat",
        "context": 100_000,
        "max_output": 4096,
        "date_added": "2026-01-01",
        "price": TEST_PRICE,
    }
    key = {"api_key_env": "SIM_KEY"}
    return catalog_from_dict(
        {
            "providers": {
                "sim": {"kind": "openai", "base_url": f"{sim_url}/v1", "api_key_env": "SIM_KEY"},
                "sim503": {"kind": "openai", "base_url": f"{sim_url}/sim/status=503/v1", **key},
                "sim500": {"kind": "openai", "base_url": f"{sim_url}/sim/status=500/v1", **key},
                "sim429": {"kind": "openai", "base_url": f"{sim_url}/sim/status=429/v1", **key},
                "dead": {"kind": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1", **key},
                # Anthropic's Messages API (the simulator's), natively
                "simanthropic": {"kind": "anthropic", "base_url": f"{sim_url}/v1", **key},
                "simanthropic-tools": {
                    "kind": "anthropic",
                    "base_url": f"{sim_url}/sim/tool_call=true/v1",
                    **key,
                },
                "simanthropic529": {
                    "kind": "anthropic",
                    "base_url": f"{sim_url}/sim/status=529/v1",
                    **key,
                },
                # the web plugin's search backend (the simulator's Exa-shaped API)
                "search-exa": {"kind": "exa", "base_url": f"{sim_url}/exa", **key},
            },
            "models": {
                # no hidden output: streams are metered past their first hold
                "test-model": {
                    **base,
                    "all_output_visible": True,
                    "routes": [{"provider": "sim", "model": "sim-chat"}],
                },
                "pricey-model": {
                    **base,
                    "all_output_visible": True,
                    "price": {"input_per_1m": "1000", "output_per_1m": "2000"},
                    "routes": [{"provider": "sim", "model": "sim-chat"}],
                },
                "fallback-model": {
                    **base,
                    "routes": [
                        {"provider": "sim503", "model": "sim-chat"},
                        {"provider": "dead", "model": "sim-chat"},
                        {"provider": "sim", "model": "sim-chat"},
                    ],
                },
                "failing-model": {
                    **base,
                    "routes": [
                        {"provider": "sim503", "model": "sim-chat"},
                        {"provider": "sim500", "model": "sim-chat"},
                    ],
                },
                "busy-model": {**base, "routes": [{"provider": "sim429", "model": "sim-chat"}]},
                "free-model": {
                    **base,
                    "price": {"input_per_1m": "0", "output_per_1m": "0"},
                    "routes": [{"provider": "sim", "model": "sim-chat"}],
                },
                "unpriced-model": {
                    **{k: v for k, v in base.items() if k != "price"},
                    "routes": [{"provider": "sim", "model": "sim-chat"}],
                },
                # Anthropic-upstream models; Claude Code's model ids are aliases of test models
                "claude-test": {
                    **base,
                    "price": CLAUDE_TEST_PRICE,
                    "routes": [{"provider": "simanthropic", "model": "claude-sim"}],
                    "aliases": ["claude-sonnet-5-5"],
                },
                "claude-agent": {
                    **base,
                    "price": CLAUDE_TEST_PRICE,
                    "routes": [{"provider": "simanthropic-tools", "model": "claude-sim"}],
                    "aliases": ["claude-opus-5-5"],
                },
                "claude-fallback": {
                    **base,
                    "routes": [
                        {"provider": "simanthropic529", "model": "claude-sim"},
                        {"provider": "sim", "model": "sim-chat"},
                    ],
                    "aliases": ["claude-haiku-5-5"],
                },
                # search results at $0.01 each (models without a price use the $0.004 default)
                "web-model": {
                    **base,
                    "unit_prices": {"web_search_result": "0.01"},
                    "routes": [{"provider": "sim", "model": "sim-chat"}],
                },
            },
        },
        env={"SIM_KEY": "sim-upstream-key"},
    )


@dataclass
class Gateway:
    """A live farebox on loopback, with helpers to make accounts and read the ledger."""

    url: str
    settings: Settings
    app: Any
    loop: LoopThread

    @property
    def services(self) -> Any:
        return self.app.state.services

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def create_account(self, usd: float | str = 0) -> tuple[str, str]:
        with self.client() as c:
            r = c.post("/accounts/create")
            r.raise_for_status()
            data = r.json()
            if float(usd) > 0:
                g = c.post(
                    "/admin/credits",
                    json={"credit_id": data["credit_id"], "amount_usd": str(usd)},
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                )
                g.raise_for_status()
        return data["credit_id"], data["api_key"]

    def account_id(self, account: str) -> str:
        """The ledger account id of `account`: a customer's credit_id, or already an account id
        (a customer's public id or a system account)."""
        found = self.services.db.read_sync(account_for_credit, account)
        return account if found is None else str(found)

    def cli_env(self) -> dict[str, str]:
        """The environment a `farebox` command needs to work on this gateway's database."""
        env = {"FAREBOX_DATABASE_URL": self.settings.database_url}
        if self.settings.secret_key is not None:
            env["FAREBOX_SECRET_KEY"] = self.settings.secret_key
        return env

    def balance(self, credit_id: str) -> dict[str, float]:
        with self.client() as c:
            r = c.post("/credits/balance", json={"credit_id": credit_id})
            r.raise_for_status()
            return dict(r.json())

    def nanos(self, account: str) -> tuple[int, int]:
        """(balance, reserved) in nanodollars, straight from the ledger after a flush; `account`
        is a credit_id or an account id."""
        self.loop.run(self.services.ledger.flush())
        bal = self.loop.run(self.services.ledger.balance(self.account_id(account)))
        assert bal is not None
        return bal.balance, bal.reserved

    def history_total_nanos(self, account: str) -> int:
        self.loop.run(self.services.ledger.flush())
        return int(self.loop.run(self.services.history.total_spent(self.account_id(account))))

    def check(self) -> CheckReport:
        self.loop.run(self.services.ledger.flush())
        return check_ledger_at(self.settings.database_url)


def check_ledger_at(url: str) -> CheckReport:
    db = Database(url, threads=1)
    try:
        return db.read_sync(check_ledger)
    finally:
        db.close()


@contextmanager
def running_sim(config: SimConfig | None = None) -> Iterator[tuple[SimServer, LoopThread]]:
    loop = LoopThread()
    sim = loop.run(start_sim(config or SimConfig()))
    try:
        yield sim, loop
    finally:
        loop.run(sim.close())
        loop.stop()


@contextmanager
def running_gateway(
    db_url: str, catalog: Catalog, data_catalog: DataCatalog | None = None, **overrides: Any
) -> Iterator[Gateway]:
    if not db_url.startswith("sqlite"):
        overrides.setdefault("secret_key", TEST_SECRET)
    overrides.setdefault("admin_token", ADMIN_TOKEN)
    settings = Settings(
        database_url=db_url,
        sweep_interval_s=overrides.pop("sweep_interval_s", 0.5),
        # Tests make many accounts from 127.0.0.1; the per-address limit has tests of its own.
        signup_per_minute=overrides.pop("signup_per_minute", 0),
        **overrides,
    )
    app = create_app(settings, catalog=catalog, data_catalog=data_catalog)
    # the same protocol, limits and proxy rules as `serve`
    with served(app, lifespan="on", **uvicorn_options(settings)) as (url, loop):
        yield Gateway(url, settings, app, loop)


@contextmanager
def served(app: Any, **config: Any) -> Iterator[tuple[str, LoopThread]]:
    """Serve an ASGI app with uvicorn on a free loopback port from a thread of its own; yields its
    base URL and that thread's loop, and stops the server afterwards."""
    port = free_port()
    options: dict[str, Any] = {"loop": "none", "log_level": "warning", **config}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
    loop = LoopThread()
    task = asyncio.run_coroutine_threadsafe(server.serve(), loop.loop)
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        threading.Event().wait(0.02)
    try:
        yield f"http://127.0.0.1:{port}", loop
    finally:
        server.should_exit = True
        task.result(15)
        loop.stop()


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve an ASGI app on loopback from its own thread; yields its base URL."""
    with served(app) as (url, _loop):
        yield url


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return True
        deadline.wait(0.05)
    return predicate()


def new_account(c: httpx.Client, usd: float | str = 0) -> tuple[str, str]:
    """(credit_id, api_key) of a new account granted `usd` through the admin API."""
    r = c.post("/accounts/create")
    assert r.status_code == 201, r.text
    data = r.json()
    if float(usd) > 0:
        g = c.post(
            "/admin/credits",
            json={"credit_id": data["credit_id"], "amount_usd": str(usd)},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert g.status_code == 200, g.text
    return data["credit_id"], data["api_key"]


DB_KINDS = ["sqlite", "postgresql"]
