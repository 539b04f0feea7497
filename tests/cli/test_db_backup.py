"""`farebox db backup PATH`: a consistent copy of a SQLite database taken while paid requests
run; on PostgreSQL the pg_dump practice instead; both say the instance secret is not in it."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
from click.testing import CliRunner

from farebox.cli import main as cli
from farebox.db.backup import BackupError, backup_sqlite
from farebox.sim.server import SimServer

import support
from support import check_ledger_at, running_gateway

REQUESTS = 300


def _spent_in(path: Path) -> int:
    """Σ query prices in a copy."""
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COALESCE(SUM(price), 0) FROM queries").fetchone()[0])


def test_backup_while_paid_requests_run_is_a_whole_consistent_ledger(
    sim: SimServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    with running_gateway(url, support.test_catalog(sim.url)) as gw:
        credit_id, key = gw.create_account(100)
        stop = threading.Event()
        answered: list[int] = []

        async def load() -> None:
            async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
                body = {
                    "model": "test-model",
                    "messages": [{"role": "user", "content": "hi"}],
                    "max_tokens": 8,
                }
                headers = {"Authorization": f"Bearer {key}"}

                async def worker() -> None:
                    while not stop.is_set() and len(answered) < REQUESTS:
                        r = await client.post("/v1/chat/completions", json=body, headers=headers)
                        answered.append(r.status_code)

                await asyncio.gather(*(worker() for _ in range(8)))

        runner = threading.Thread(target=lambda: asyncio.run(load()))
        runner.start()
        copies: list[Path] = []
        try:
            while len(answered) < 20:
                stop.wait(0.01)
            for n in range(3):  # three copies at different moments of the load
                target = tmp_path / f"copy-{n}.db"
                result = CliRunner().invoke(
                    cli, ["db", "backup", str(target)], env={"FAREBOX_DATABASE_URL": url}
                )
                assert result.exit_code == 0, result.output
                assert "instance secret is not in this backup" in result.output
                assert str(tmp_path / "live-secret.key") in result.output
                copies.append(target)
                stop.wait(0.05)
        finally:
            stop.set()
            runner.join(60)
        assert set(answered) == {200} and len(answered) >= 20

        spent = [_spent_in(c) for c in copies]
        for copy in copies:
            report = check_ledger_at(f"sqlite:///{copy}")
            assert report.ok, report.problems
        assert spent == sorted(spent)  # later copies saw more spending
        assert 0 < spent[0] < gw.history_total_nanos(credit_id)

    # The copy stands alone: `farebox ledger check` on it, in a process of its own.
    checked = subprocess.run(
        [sys.executable, "-m", "farebox", "ledger", "check"],
        env={"FAREBOX_DATABASE_URL": f"sqlite:///{copies[-1]}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ledger ok" in checked.stdout


def test_backup_refuses_to_overwrite_and_names_a_missing_database(tmp_path: Path) -> None:
    existing = tmp_path / "there.db"
    existing.write_bytes(b"keep me")
    source = tmp_path / "src.db"
    sqlite3.connect(source).close()
    try:
        backup_sqlite(source, existing)
        raise AssertionError("overwrote a file")
    except BackupError as exc:
        assert "exists" in str(exc)
    assert existing.read_bytes() == b"keep me"
    result = CliRunner().invoke(
        cli,
        ["db", "backup", str(tmp_path / "new.db")],
        env={"FAREBOX_DATABASE_URL": f"sqlite:///{tmp_path / 'missing.db'}"},
    )
    assert result.exit_code == 1 and "no database file" in result.output
    assert not (tmp_path / "new.db").exists()


def test_postgresql_gets_the_pg_dump_practice_without_the_password() -> None:
    result = CliRunner().invoke(
        cli,
        ["db", "backup", "/backups/farebox.dump"],
        env={
            "FAREBOX_DATABASE_URL": "postgresql://farebox:db-secret@db.internal:5432/farebox",
            "FAREBOX_SECRET_KEY": "k" * 40,
        },
    )
    assert result.exit_code == 1
    assert (
        "pg_dump --format=custom --file /backups/farebox.dump "
        "'postgresql://farebox@db.internal:5432/farebox'" in result.output
    )
    assert "db-secret" not in result.output and "k" * 40 not in result.output
    assert "instance secret is not in this backup" in result.output
    assert "FAREBOX_SECRET_KEY" in result.output
