"""`farebox serve --workers 2` loads once and forks (net/prefork.py): both forked workers serve
paid chats from the shipped catalog (its two encodings) against `farebox sim`; a SIGKILLed
worker is replaced and the service goes on answering; SIGTERM makes every worker drain (a stream
in flight finishes, one that outlives FAREBOX_DRAIN_S is ended and billed for what it
delivered), the parent exits 0 and `farebox ledger check` is clean."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx

from e2e_support import (
    ADMIN_TOKEN,
    IN_NANOS,
    OUT_NANOS,
    Ledger,
    Proc,
    _spawn,
    _wait_ready,
    chat_body,
    create_account,
    ledger_check,
    serve_env,
    stream_chat,
    write_catalog,
)
from support import free_port

SHIPPED_MODELS = ("gpt-4o-mini", "claude-sonnet-4.5")  # o200k_base and cl100k_base
NOTICE_S = 1.0
DRAIN_S = 4.0
SLOW = {
    "short-model": "tps=20,output_tokens=60",  # 3 s: ends while draining
    "long-model": "tps=20,output_tokens=400",  # 20 s: cut at the drain deadline
}


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found


def _serve_workers(name: str, env: dict[str, str]) -> Proc:
    port = free_port()
    args = ["serve", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)]
    proc = _spawn(name, args, env)
    proc.url = f"http://127.0.0.1:{port}"
    _wait_ready(proc, "/healthz", timeout=90)
    return proc


def _wait_for(what: str, proc: Proc, ok: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        assert proc.alive(), proc.log()
        assert time.monotonic() < deadline, f"{what}:\n{proc.log()}"
        time.sleep(0.1)


def _paid_chat(url: str, key: str, model: str, i: int) -> Decimal:
    body = {"model": model, "messages": [{"role": "user", "content": f"count to {i}"}]}
    with httpx.Client(timeout=30) as c:  # a new connection: either worker may take it
        r = c.post(url + "/v1/chat/completions", json=body, headers={"Authorization": key})
    assert r.status_code == 200, r.text
    cost = json.loads(r.text, parse_float=Decimal)["usage"]["cost"]
    assert isinstance(cost, Decimal) and cost > 0
    return cost


def test_forked_workers_serve_and_a_killed_one_is_replaced(sim_proc: Proc, tmp_path: Path) -> None:
    overlay = {
        "providers": {
            "openai": {"base_url": f"{sim_proc.url}/v1"},
            "anthropic": {"base_url": f"{sim_proc.url}/v1"},
        }
    }
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(overlay))
    metrics = tmp_path / "metrics"
    env = {
        **serve_env(f"sqlite:///{tmp_path / 'farebox.db'}", catalog),
        "OPENAI_API_KEY": "sim",
        "ANTHROPIC_API_KEY": "sim",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    server = _serve_workers("prefork", env)
    workers = _children(server.pid)
    assert len(workers) == 2, workers
    _, api_key = create_account(server.url, "20")
    key = f"Bearer {api_key}"

    def served() -> set[int]:  # the workers that counted a request (their metrics files)
        return {int(p.stem.split("_")[-1]) for p in metrics.glob("counter_*.db")}

    for i in range(60):
        _paid_chat(server.url, key, SHIPPED_MODELS[i % 2], i)
        if i >= 10 and served() >= workers:
            break
    assert served() >= workers, (served(), workers)  # both forked workers answered

    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    _wait_for(
        "the killed worker was not replaced",
        server,
        lambda: victim not in _children(server.pid) and len(_children(server.pid)) == 2,
    )
    for i in range(10):  # the survivor and the new worker answer
        _paid_chat(server.url, key, SHIPPED_MODELS[i % 2], i)
    scraped = httpx.get(server.url + "/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert scraped.status_code == 200 and "farebox_requests_total" in scraped.text
    assert "exited unexpectedly" in server.log() and str(victim) in server.log()

    server.popen.send_signal(signal.SIGTERM)
    assert server.popen.wait(timeout=60) == 0, server.log()
    assert "Traceback" not in server.log(), server.log()
    check = ledger_check(env)
    assert check.returncode == 0, check.stdout + check.stderr


async def _readyz(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as fresh:
        return await fresh.get(url + "/readyz")


def test_sigterm_drains_every_worker_then_the_parent_exits_zero(
    sim_proc: Proc, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'farebox.db'}"
    catalog = write_catalog(tmp_path / "catalog.json", sim_proc.url, SLOW)
    env = serve_env(
        db_url, catalog, drain_s=DRAIN_S, drain_notice_s=NOTICE_S, stream_increment_tokens=16
    )
    server = _serve_workers("prefork-drain", env)
    workers = _children(server.pid)
    assert len(workers) == 2, workers
    credit_id, key = create_account(server.url, "10")

    async def scenario() -> None:
        # Two clients, so the streams go on two connections (either worker may hold either).
        async with httpx.AsyncClient(timeout=60) as a, httpx.AsyncClient(timeout=60) as b:
            short = asyncio.create_task(
                stream_chat(a, server.url, key, chat_body("short-model", 1000))
            )
            long = asyncio.create_task(
                stream_chat(b, server.url, key, chat_body("long-model", 1000))
            )
            await asyncio.sleep(0.5)  # both streaming
            server.popen.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
            ready = await _readyz(server.url)  # whichever worker answers is draining
            assert ready.status_code == 503 and ready.json() == {"status": "draining"}

            done = await short
            done.assert_finished(60)
            cut = await long
            cut.assert_cut_by_restart(IN_NANOS, OUT_NANOS, most=400)

            assert server.popen.wait(timeout=NOTICE_S + DRAIN_S + 30) == 0, server.log()
            assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
            assert "Traceback" not in server.log(), server.log()

            ledger = Ledger(db_url)
            try:
                prices = sorted(int(row[4]) for row in ledger.queries(credit_id))
                assert prices == sorted([done.cost, cut.cost])
                _, debits, pending = ledger.account(credit_id)
                assert pending == 0 and ledger.open_holds(credit_id) == []
                assert debits == sum(prices)
            finally:
                ledger.close()

    asyncio.run(scenario())
    check = ledger_check(env)
    assert check.returncode == 0, check.stdout + check.stderr


def test_ctrl_c_stops_the_workers_too(sim_proc: Proc, tmp_path: Path) -> None:
    """SIGINT to the parent (alone, here) drains the workers like SIGTERM does."""
    catalog = write_catalog(tmp_path / "catalog.json", sim_proc.url, {})
    env = serve_env(f"sqlite:///{tmp_path / 'farebox.db'}", catalog)
    server = _serve_workers("prefork-int", env)
    workers = _children(server.pid)
    assert len(workers) == 2
    server.popen.send_signal(signal.SIGINT)
    assert server.popen.wait(timeout=60) == 0, server.log()
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
