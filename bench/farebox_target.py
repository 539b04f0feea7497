"""What the benchmark sets up for a farebox target, and the exactness checks it runs after the
load: the catalog routing to the fake upstream, the environment, a fresh database, and the
ledger facts and log exceptions read back at the end."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from load import MODEL, log

UPSTREAM_KEY = "sk-fake-upstream"


def serve_argv(farebox: str, port: int) -> list[str]:
    """`farebox serve` in one process on 127.0.0.1:`port`."""
    return [farebox, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]


def create_account(farebox: str, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """A bench account with $1,000,000 through `farebox admin create-account` in `env`: its
    JSON (`account_id`, `api_key`, ...)."""
    made = subprocess.run(
        [farebox, "admin", "create-account", "--usd", "1000000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )
    if made.returncode != 0:
        raise RuntimeError(f"create-account failed: {made.stdout}{made.stderr}")
    account: dict[str, Any] = json.loads(made.stdout.strip().splitlines()[-1])
    return account


def pinned(core: int, argv: list[str]) -> list[str]:
    """`argv` run by `taskset` on one core (the gateway on 1, the load and upstream on 0)."""
    return ["taskset", "-c", str(core), *argv]


def upstream_argv(sticks: Path, port: int) -> list[str]:
    """The measuring sticks' fake upstream on `port`, pinned to core 0."""
    return pinned(0, [sys.executable, str(sticks / "fake_upstream.py"), str(port)])


def write_catalog(path: Path, upstream_port: int) -> None:
    catalog = {
        "replace_defaults": True,
        "providers": {
            "fake": {
                "kind": "openai",
                "base_url": f"http://127.0.0.1:{upstream_port}/v1",
                "api_key_env": "FAKE_KEY",
            }
        },
        "models": {
            MODEL: {
                "provider": "Bench",
                "type": "chat",
                "context": 128000,
                "max_output": 4096,
                "date_added": "2026-01-01",
                "price": {"input_per_1m": "0.10", "output_per_1m": "0.20"},
                "routes": [{"provider": "fake", "model": MODEL}],
            }
        },
    }
    path.write_text(json.dumps(catalog, indent=2))


def farebox_env(db_url: str, catalog: Path) -> dict[str, str]:
    # Only our FAREBOX_* settings: nothing inherited from the caller's shell (a stray
    # FAREBOX_REDIS_URL would change what is measured).
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}
    env.update(FAREBOX_DATABASE_URL=db_url, FAREBOX_CATALOG=str(catalog), FAKE_KEY=UPSTREAM_KEY)
    # PostgreSQL needs the instance secret configured (SQLite keeps one next to its file).
    env.update(FAREBOX_SECRET_KEY="farebox-bench-instance-secret-0123456789")
    return env


@contextlib.contextmanager
def database(kind: str, tmp: Path, pg_admin: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'farebox-bench.db'}"
        return
    import psycopg

    name = "farebox_bench_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(pg_admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        log(f"  dropped database {name}")


def ledger_facts(db_url: str, account_id: str) -> dict[str, Any]:
    """Spend of the bench account vs Σ of its query history, read straight from the tables."""
    sql = {
        "account": "SELECT debits_posted, debits_pending, credits_posted, credits_pending "
        "FROM accounts WHERE id = {p}",
        "queries": "SELECT count(*), coalesce(sum(price), 0) FROM queries WHERE account_id = {p}",
        "holds": "SELECT count(*) FROM holds",
    }
    if db_url.startswith("sqlite:///"):
        import sqlite3

        conn: Any = sqlite3.connect(db_url[len("sqlite:///") :])
        p = "?"
    else:
        import psycopg

        conn = psycopg.connect(db_url, connect_timeout=5)
        p = "%s"
    try:
        acct = conn.execute(sql["account"].format(p=p), (account_id,)).fetchone()
        nq, qsum = conn.execute(sql["queries"].format(p=p), (account_id,)).fetchone()
        (nholds,) = conn.execute(sql["holds"]).fetchone()
    finally:
        conn.close()
    spend = int(acct[0]) if acct else None
    return {
        "spend_nanos": spend,
        "pending_debits_nanos": int(acct[1]) if acct else None,
        "history_rows": int(nq),
        "history_sum_nanos": int(qsum),
        "open_holds": int(nholds),
        "spend_equals_history": spend == int(qsum),
    }


def exceptions_in_log(text: str) -> dict[str, int]:
    """How often each exception ends a traceback in a server log (`pkg.Error: message`)."""
    out: dict[str, int] = {}
    lines = text.splitlines()
    for prev, line in itertools.pairwise(lines):
        if prev.startswith(" ") and line and not line.startswith((" ", "Traceback", "During")):
            name = line.split(":", 1)[0]
            if name.replace(".", "").replace("_", "").isalnum():
                out[name] = out.get(name, 0) + 1
    return out


# --------------------------------------------------------------------------- measuring
