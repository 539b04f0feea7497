"""`farebox serve --workers 2`: whichever worker answers a scrape, the counts are the sum of
both workers' (prometheus_client's multiprocess mode), the database's figures appear once, a
previous run's files in an operator's PROMETHEUS_MULTIPROC_DIR are not counted, and the access
lines of both workers reach standard output whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from support import ADMIN_TOKEN, TEST_SECRET, free_port

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHAT_ROUTE = "/v1/chat/completions"
REQUESTS = 40


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "farebox", *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready:\n{log.read_text(errors='replace')}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def sim_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = _spawn(["sim", "--port", str(port)], {}, tmp_path / "sim.log")
    try:
        _wait(f"http://127.0.0.1:{port}/health", proc, tmp_path / "sim.log")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


def _catalog(path: Path, sim_url: str) -> Path:
    model = {
        "provider": "Test",
        "type": "chat",
        "context": 100_000,
        "max_output": 4096,
        "date_added": "2026-01-01",
        "price": {"input_per_1m": "1", "output_per_1m": "2"},
        "routes": [{"provider": "sim", "model": "sim-chat"}],
    }
    catalog = {
        "replace_defaults": True,
        "providers": {"sim": {"kind": "openai", "base_url": f"{sim_url}/v1", "api_key_env": "K"}},
        "models": {"w-model": model},
    }
    path.write_text(json.dumps(catalog))
    return path


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with httpx.Client(timeout=10) as c:  # a new connection: any worker may answer
        r = c.get(url + "/metrics", headers=ADMIN)
    assert r.status_code == 200, r.text
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in found, f"{key} exported twice"
            found[key] = s.value
    return found


def _settles(url: str, key: Any, ok: Callable[[float], bool]) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if ok(_scrape(url).get(key, 0.0)):
            return True
        time.sleep(0.05)
    return False


def test_two_workers_count_as_one_gateway(sim_url: str, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"a previous run's file")
    port = free_port()
    env = {
        "FAREBOX_DATABASE_URL": f"sqlite:///{tmp_path / 'farebox.db'}",
        "FAREBOX_CATALOG": str(_catalog(tmp_path / "catalog.json", sim_url)),
        "FAREBOX_ADMIN_TOKEN": ADMIN_TOKEN,
        "FAREBOX_SECRET_KEY": TEST_SECRET,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "K": "sim-key",
    }
    log = tmp_path / "serve.log"
    args = ["serve", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)]
    proc = _spawn(args, env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url + "/healthz", proc, log)
        r = httpx.post(url + "/accounts/create", timeout=30)
        account = r.json()
        g = httpx.post(
            url + "/admin/credits",
            json={"credit_id": account["credit_id"], "amount_usd": "5"},
            headers=ADMIN,
            timeout=30,
        )
        assert g.status_code == 200, g.text
        body = {"model": "w-model", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(REQUESTS):
            with httpx.Client(timeout=30) as c:  # new connections spread over the workers
                r = c.post(
                    url + CHAT_ROUTE,
                    json=body,
                    headers={"Authorization": f"Bearer {account['api_key']}"},
                )
                assert r.status_code == 200, r.text
        pids = {p.name.split("_")[-1] for p in metrics_dir.glob("counter_*.db")}
        assert len(pids) == 2, sorted(metrics_dir.iterdir())  # both served; the stale file went
        chat = (("model", "w-model"), ("route", CHAT_ROUTE), ("status", "200"))
        # A request is counted just after its response is sent: the last one may still be due.
        assert _settles(url, ("farebox_requests_total", chat), lambda n: n == REQUESTS)
        for _ in range(6):
            found = _scrape(url)
            assert found[("farebox_requests_total", chat)] == REQUESTS
            ttfb = ("farebox_time_to_first_byte_seconds_count", (("route", CHAT_ROUTE),))
            assert found[ttfb] == REQUESTS
            assert found[("farebox_db_open_holds", ())] == 0  # once, not once per worker
    finally:
        _stop(proc)
    out = log.read_text(errors="replace")
    chat_lines = [line for line in out.splitlines() if f"route={CHAT_ROUTE} status=200" in line]
    assert len(chat_lines) == REQUESTS
    assert all(line.endswith(tuple("0123456789")) for line in chat_lines)  # whole lines
    assert account["api_key"] not in out and account["credit_id"] not in out


def test_serve_workers_makes_and_removes_its_own_directory(sim_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        "FAREBOX_DATABASE_URL": f"sqlite:///{tmp_path / 'farebox.db'}",
        "FAREBOX_CATALOG": str(_catalog(tmp_path / "catalog.json", sim_url)),
        "FAREBOX_SECRET_KEY": TEST_SECRET,
        "FAREBOX_METRICS_PUBLIC": "true",
        "TMPDIR": str(tmp_path),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / "serve.log"
    args = ["serve", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)]
    proc = _spawn(args, {**env, "PROMETHEUS_MULTIPROC_DIR": ""}, log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url + "/healthz", proc, log)
        healthz = (("model", "none"), ("route", "/healthz"), ("status", "200"))
        assert _settles(url, ("farebox_requests_total", healthz), lambda n: n >= 1)
        made = list(tmp_path.glob("farebox-metrics-*"))
        assert len(made) == 1 and any(made[0].glob("counter_*.db"))
    finally:
        _stop(proc)
    assert proc.returncode == 0, log.read_text(errors="replace")
    assert not list(tmp_path.glob("farebox-metrics-*"))
