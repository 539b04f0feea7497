"""The quick start as a newcomer runs it: `farebox serve --demo` in one folder, the commands it
prints run as printed (the admin API's grant, a top-up paid with `farebox dev pay` from another
folder), a second demo on the same port refused before it creates anything, and plain
`farebox serve` saying what it serves."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support import free_port

FAREBOX = Path(sys.executable).with_name("farebox")


def _env() -> dict[str, str]:
    """The caller's environment without farebox settings (the demo makes its own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 90) -> str:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return "".join(lines)
    raise AssertionError(f"no {marker!r} in what it printed:\n{''.join(lines)}")


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_the_demo_banner_runs_as_printed(
    tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    demo_dir, other_dir = tmp_path / "demo", tmp_path / "other"
    demo_dir.mkdir()
    other_dir.mkdir()
    port = free_port()
    demo = subprocess.Popen(
        [str(FAREBOX), "serve", "--demo", "--port", str(port)],
        cwd=demo_dir,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started.append(demo)
    banner = _read_until(demo, "dev pay")
    base = f"http://127.0.0.1:{port}"
    api_key = re.search(r"api_key:\s+(\S+)", banner)[1]  # type: ignore[index]
    credit_id = re.search(r"credit_id:\s+(\S+)", banner)[1]  # type: ignore[index]
    grant = next(line for line in banner.splitlines() if "/admin/credits" in line)
    create = next(line for line in banner.splitlines() if "/topup/create/" in line)
    pay = next(line for line in banner.splitlines() if " dev pay " in line).strip()
    assert pay.split()[1] == str(FAREBOX)  # not a bare `farebox`, which is not on PATH
    for _ in range(100):  # the banner comes just before uvicorn starts serving
        try:
            httpx.get(base + "/healthz", timeout=2)
            break
        except httpx.TransportError:
            time.sleep(0.1)

    def shell(line: str, cwd: Path) -> str:
        done = subprocess.run(
            line, shell=True, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def balance() -> float:
        r = httpx.post(base + "/credits/balance", json={"credit_id": credit_id}, timeout=10)
        return float(r.json()["balance"])

    assert balance() == 5.0
    assert '"balance"' in shell(grant.strip(), other_dir)  # the admin API's grant, as printed
    assert balance() == 10.0
    invoice = httpx.post(
        base + "/topup/create/btc-lightning",
        headers={"Authorization": f"Bearer {api_key}"},
        json={"amount": 5, "currency": "USD"},
        timeout=10,
    ).json()
    assert "topup/create/btc-lightning" in create
    paid = shell(pay.replace("<bolt11 from that reply>", shlex.quote(invoice["bolt11"])), other_dir)
    assert paid.startswith("paid; preimage ") and "credited $5" in paid
    assert balance() == 15.0
    assert list(other_dir.iterdir()) == []  # dev pay left no farebox.db behind

    second = subprocess.run(
        [str(FAREBOX), "serve", "--demo", "--port", str(port)],
        cwd=other_dir,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1 and "already in use" in second.stderr
    assert list(other_dir.iterdir()) == []  # no database, no second funded account
    assert demo.poll() is None


def test_plain_serve_says_what_it_serves(
    tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    env = {**_env(), "FAREBOX_ADMIN_TOKEN": "not-to-be-printed"}
    proc = subprocess.Popen(
        [str(FAREBOX), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started.append(proc)
    block = _read_until(proc, "admin API:")
    assert f"on http://127.0.0.1:{port}" in block
    assert "database:  sqlite:///farebox.db" in block
    assert "catalog:   shipped:" in block and "payments:  none" in block
    assert "admin API: on" in block and "not-to-be-printed" not in block
