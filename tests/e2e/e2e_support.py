"""End-to-end harness: real `farebox sim` and `farebox serve` processes on loopback, a streaming
SSE client that records exactly what it received, and direct reads of the ledger tables.

Every process started here is registered in `LIVE` and killed by the fixtures in conftest.py;
its stderr goes to a temp file that is printed when a test fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from farebox.billing.tokens import count_text, encoder
from farebox.db.database import normalize_url
from farebox.keys.credentials import hash_credit_id

from support import NANOS, TEST_SECRET, free_port, require_db

ENC = encoder("o200k_base")

# Prices of every e2e model: $1 per 1M input tokens, $2000 per 1M output tokens, so one output
# token costs 2_000_000 nanodollars and one input token 1_000.
IN_NANOS = 1_000
OUT_NANOS = 2_000_000
PRICE = {"input_per_1m": "1", "output_per_1m": "2000"}
SIM_KEY_ENV = "FAREBOX_E2E_SIM_KEY"  # the sim wants some bearer key
# Our gateways' admin token: unique, so a gateway of another test run is never mistaken for ours.
ADMIN_TOKEN = "e2e-admin-" + uuid.uuid4().hex


# Slow upstreams for the crash and disconnect tests, as sim fault prefixes on the same sim.
SLOW_MODELS = {
    "slow-model": "tps=20,output_tokens=400",  # 20 s of output
    "crawl-model": "tps=10,output_tokens=400",  # 40 s of output
    "sweep-model": "tps=10,output_tokens=60",  # 6 s of output
}


def require_pg() -> None:
    require_db("postgresql")


# ---------------------------------------------------------------------------------------------
# Processes


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""
    shared: bool = False  # owned by a module/session fixture, which stops it

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self, tail: int = 6000) -> str:
        try:
            data = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return data[-tail:]

    def kill9(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(5)


LIVE: list[Proc] = []


def _spawn(name: str, args: list[str], env: Mapping[str, str]) -> Proc:
    fd, log = tempfile.mkstemp(prefix=f"farebox-e2e-{name}-", suffix=".log")
    with os.fdopen(fd, "wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "farebox", *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    proc = Proc(name, popen, Path(log))
    LIVE.append(proc)
    return proc


def _wait_ready(proc: Proc, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise AssertionError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log()}")
        try:
            if httpx.get(proc.url + path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{proc.name} not ready after {timeout}s:\n{proc.log()}")


def start_sim(*args: str) -> Proc:
    port = free_port()
    proc = _spawn("sim", ["sim", "--port", str(port), *args], {})
    proc.url = f"http://127.0.0.1:{port}"
    _wait_ready(proc, "/health")
    return proc


def serve_env(db_url: str, catalog: Path, **settings: object) -> dict[str, str]:
    env = {
        "FAREBOX_DATABASE_URL": db_url,
        "FAREBOX_CATALOG": str(catalog),
        "FAREBOX_ADMIN_TOKEN": ADMIN_TOKEN,
        "FAREBOX_SECRET_KEY": TEST_SECRET,  # required on PostgreSQL; shared by every replica
        SIM_KEY_ENV: "sim-upstream-key",
    }
    for name, value in settings.items():
        env["FAREBOX_" + name.upper()] = str(value)
    return env


def spawn_serve(name: str, env: Mapping[str, str]) -> Proc:
    port = free_port()
    proc = _spawn(name, ["serve", "--host", "127.0.0.1", "--port", str(port)], env)
    proc.url = f"http://127.0.0.1:{port}"
    return proc


def _is_ours(proc: Proc) -> bool:
    """Whether the gateway answering on proc's port knows our admin token (another test run's
    gateway could have taken the port between free_port() and our bind)."""
    try:
        r = httpx.post(
            proc.url + "/admin/credits",
            json={"credit_id": "e2e-probe-no-such-account", "amount_usd": "1"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )
    except httpx.HTTPError:
        return False
    return r.status_code == 404


def _lost_port(proc: Proc) -> bool:
    return "address already in use" in proc.log().lower() or (proc.alive() and not _is_ours(proc))


def wait_serve(proc: Proc, env: Mapping[str, str] | None = None, attempts: int = 3) -> Proc:
    """Wait until `proc` serves; if it lost its port to another process, start it again on
    another port (when `env` is given) and return the process that serves."""
    for attempt in range(attempts):
        try:
            _wait_ready(proc, "/healthz", timeout=90)
            assert _is_ours(proc), f"port of {proc.name} answered by another gateway"
            time.sleep(0.1)
            assert proc.alive(), f"{proc.name} died after starting:\n{proc.log()}"
            return proc
        except AssertionError:
            if env is None or attempt == attempts - 1 or not _lost_port(proc):
                raise
            proc.stop()
            proc = spawn_serve(proc.name, env)
    raise AssertionError("unreachable")


def start_serve(name: str, env: Mapping[str, str]) -> Proc:
    return wait_serve(spawn_serve(name, env), env)


def cli(
    env: Mapping[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "farebox", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def create_account(url: str, usd: str) -> tuple[str, str]:
    """POST /accounts/create, then grant `usd` with the admin API (a grants -> account transfer).

    (`farebox admin create-account --usd` does the same but costs a 2-5 s interpreter start.)
    """
    r = httpx.post(url + "/accounts/create", timeout=30)
    assert r.status_code == 201, r.text
    data = r.json()
    g = httpx.post(
        url + "/admin/credits",
        json={"credit_id": data["credit_id"], "amount_usd": usd},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )
    assert g.status_code == 200, g.text
    return data["credit_id"], data["api_key"]


def ledger_check(env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return cli(env, "ledger", "check")


def write_catalog(path: Path, sim_url: str, slow: Mapping[str, str]) -> Path:
    """`race-model` on the plain sim; one model per entry of `slow` ({model: fault prefix})."""
    base = {
        "provider": "E2E",
        "type": "chat",
        "context": 100_000,
        "max_output": 4096,
        "date_added": "2026-01-01",
        "price": PRICE,
    }
    key = {"api_key_env": SIM_KEY_ENV}
    providers: dict[str, Any] = {"sim": {"kind": "openai", "base_url": f"{sim_url}/v1", **key}}
    models: dict[str, Any] = {
        "race-model": {**base, "routes": [{"provider": "sim", "model": "sim-chat"}]}
    }
    for model, spec in slow.items():
        providers[model] = {"kind": "openai", "base_url": f"{sim_url}/sim/{spec}/v1", **key}
        models[model] = {**base, "routes": [{"provider": model, "model": "sim-chat"}]}
    catalog = {"replace_defaults": True, "providers": providers, "models": models}
    path.write_text(json.dumps(catalog, indent=2))
    return path


# ---------------------------------------------------------------------------------------------
# The client side of one streamed chat completion


def usd_nanos(value: Decimal | int) -> int:
    """A USD JSON number (parsed as Decimal, exactly as written) to nanodollars."""
    return int((Decimal(value) * NANOS).to_integral_value())


@dataclass
class StreamResult:
    status: int = 0
    error: dict[str, Any] | None = None  # a non-200 body, or an SSE error event
    tokens: int = 0  # output tokens received, counted per chunk like the gateway does
    chunks: int = 0  # content chunks received
    max_chunk_tokens: int = 0
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    done: bool = False  # saw data: [DONE]
    broken: str | None = None  # the connection ended early (repr of the exception)

    @property
    def cost(self) -> int:
        assert self.usage is not None
        return usd_nanos(self.usage["cost"])

    def assert_finished(self, tokens: int) -> None:
        """A stream that ran to its end: all its tokens, `stop`, [DONE]."""
        assert self.status == 200 and self.error is None, self
        assert self.done and self.finish_reason == "stop" and self.tokens == tokens, self

    def assert_cut_by_restart(self, in_nanos: int, out_nanos: int, most: int) -> None:
        """A stream a draining server ended: its `gateway_restarting` event, [DONE], and a bill
        for exactly what it delivered (fewer than `most` tokens)."""
        assert self.status == 200 and self.broken is None, self
        assert self.error is not None and self.error["code"] == "gateway_restarting", self
        assert self.done and self.usage is not None and 0 < self.tokens < most, self
        assert self.usage["completion_tokens"] == self.tokens
        assert self.cost == self.usage["prompt_tokens"] * in_nanos + self.tokens * out_nanos

    def feed(self, payload: str) -> None:
        if payload == "[DONE]":
            self.done = True
            return
        obj = json.loads(payload, parse_float=Decimal)
        if "error" in obj:
            self.error = obj["error"]
            return
        if obj.get("usage"):
            self.usage = obj["usage"]
        for choice in obj.get("choices") or ():
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                n = count_text(ENC, content)
                self.tokens += n
                self.chunks += 1
                self.max_chunk_tokens = max(self.max_chunk_tokens, n)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]


def chat_body(
    model: str, max_tokens: int, prompt: str = "count the ledger entries now"
) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
    }


async def stream_chat(
    client: httpx.AsyncClient,
    url: str,
    key: str,
    body: dict[str, Any],
    stop_after_tokens: int | None = None,
) -> StreamResult:
    """POST a streaming chat; with `stop_after_tokens`, close the connection once that many
    output tokens have arrived (a client that goes away mid-stream)."""
    res = StreamResult()
    headers = {"Authorization": f"Bearer {key}"}
    async with client.stream("POST", url + "/v1/chat/completions", json=body, headers=headers) as r:
        res.status = r.status_code
        if r.status_code != 200:
            raw = await r.aread()
            res.error = json.loads(raw).get("error") if raw else None
            return res
        try:
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    res.feed(line[6:])
                if stop_after_tokens is not None and res.tokens >= stop_after_tokens:
                    break  # leaving the block closes the connection mid-body
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            res.broken = repr(exc)
    return res


# ---------------------------------------------------------------------------------------------
# The ledger, read straight from the database


class Ledger:
    """Synchronous reads of the tables, in nanodollars (safe to use from a polling thread)."""

    def __init__(self, db_url: str) -> None:
        self.engine: Engine = create_engine(normalize_url(db_url), pool_size=2, max_overflow=2)

    def close(self) -> None:
        self.engine.dispose()

    def one(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).one()

    def all(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params).fetchall())

    def account_id(self, account: str) -> str:
        """The ledger account id of `account`: a customer's credit_id, or already an id."""
        rows = self.all(
            "SELECT account_id FROM account_credentials WHERE credit_hash = :h",
            h=hash_credit_id(account),
        )
        return str(rows[0][0]) if rows else account

    def account(self, account: str) -> tuple[int, int, int]:
        """(credits_posted, debits_posted, debits_pending) of a credit_id's or id's account."""
        row = self.one(
            "SELECT credits_posted, debits_posted, debits_pending FROM accounts WHERE id = :id",
            id=self.account_id(account),
        )
        return int(row[0]), int(row[1]), int(row[2])

    def key(self, key_id: str) -> tuple[int, int, int, int]:
        """(usage_limit, period_posted, period_pending, total_posted)."""
        row = self.one(
            "SELECT usage_limit, period_posted, period_pending, total_posted FROM api_keys "
            "WHERE id = :id",
            id=key_id,
        )
        return int(row[0]), int(row[1]), int(row[2]), int(row[3])

    def queries(self, account: str) -> list[Any]:
        return self.all(
            "SELECT request_id, key_id, input_count, output_count, price, query_source "
            "FROM queries WHERE account_id = :id ORDER BY id",
            id=self.account_id(account),
        )

    def open_holds(self, account: str) -> list[Any]:
        return self.all(
            "SELECT transfer_id, seq, amount, recorded, expires_at FROM holds "
            "WHERE account_id = :id ORDER BY seq",
            id=self.account_id(account),
        )

    def wait_reserved_zero(self, account_id: str, timeout: float) -> float:
        """Seconds until the account has nothing reserved; fails after `timeout`."""
        start = time.monotonic()
        while True:
            if self.account(account_id)[2] == 0:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise AssertionError(
                    f"{account_id} still has {self.account(account_id)[2]} nanodollars reserved "
                    f"after {timeout}s; open holds: {self.open_holds(account_id)}"
                )
            time.sleep(0.05)


async def history_nanos(client: httpx.AsyncClient, url: str, credit_id: str) -> tuple[int, int]:
    """(rows, Σ price) over every page of GET /queries/history, prices parsed exactly."""
    total = rows = 0
    page = 1
    while True:
        r = await client.get(
            url + "/queries/history",
            params={"credit_id": credit_id, "page": page, "page_count": 100},
        )
        assert r.status_code == 200, r.text
        data = json.loads(r.text, parse_float=Decimal)
        for row in data["data"]:
            total += usd_nanos(row["price_in_usd"])
            rows += 1
        if page >= data["pagination"]["total_pages"]:
            return rows, total
        page += 1


@dataclass
class Extremes:
    """What a poller saw while a race ran."""

    samples: int = 0
    min_balance: int | None = None
    min_available: int | None = None
    max_key_committed: int = 0  # period_posted + period_pending
    max_key_posted: int = 0
    notes: list[str] = field(default_factory=list)

    def see_account(self, balance: int, available: int) -> None:
        self.samples += 1
        self.min_balance = balance if self.min_balance is None else min(self.min_balance, balance)
        self.min_available = (
            available if self.min_available is None else min(self.min_available, available)
        )


async def poll_api_balance(
    client: httpx.AsyncClient, urls: list[str], credit_id: str, stop: asyncio.Event, seen: Extremes
) -> None:
    """Read POST /credits/balance on every server until `stop` is set."""

    async def poll(url: str) -> None:
        while not stop.is_set():
            r = await client.post(url + "/credits/balance", json={"credit_id": credit_id})
            assert r.status_code == 200, r.text
            data = json.loads(r.text, parse_float=Decimal)
            seen.see_account(usd_nanos(data["balance"]), usd_nanos(data["available"]))
            await asyncio.sleep(0.01)

    await asyncio.gather(*(poll(url) for url in urls))


# Hold increments of the shared two-server cluster: small, so streams extend their holds often.
INCREMENT_TOKENS = 16


@dataclass
class Cluster:
    """Two `farebox serve` processes on one fresh PostgreSQL database."""

    servers: list[Proc]
    env: dict[str, str]
    ledger: Ledger

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]


# -- the simulator and the teardown shared by the folders whose tests start processes (e2e,
# replicas): their conftest imports these, so pytest registers them there.


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report


@pytest.fixture(scope="session")
def sim_proc() -> Iterator[Proc]:
    """One `farebox sim` for the folder: 200 tokens/s so concurrent streams overlap; 40 tokens
    is a whole answer ("stop")."""
    proc = start_sim("--tokens-per-second", "200", "--output-tokens", "40")
    proc.shared = True
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(autouse=True)
def reap_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Stop what the test started; on failure print every live process's log."""
    before = len(LIVE)
    yield
    failed = any(
        getattr(getattr(request.node, "rep_" + when, None), "failed", False)
        for when in ("setup", "call")
    )
    if failed:
        for proc in LIVE:
            print(f"\n----- {proc.name} (pid {proc.pid}, rc {proc.popen.poll()}) log -----")
            print(proc.log())
    for proc in LIVE[before:]:
        if not proc.shared:
            proc.stop()


@pytest.fixture(scope="session", autouse=True)
def reap_everything() -> Iterator[None]:
    """The safety net: nothing outlives the session (nor its log files: a failed test's logs
    were printed with it)."""
    yield
    for proc in LIVE:
        proc.stop()
        proc.log_path.unlink(missing_ok=True)
