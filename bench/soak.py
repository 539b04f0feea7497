"""Soak: one `farebox serve` under a long mixed load, checked for growth, leaks and exactness.

    python bench/soak.py                              # 1,000,000 requests or 30 min, each database
    python bench/soak.py --quick                      # 2 minutes each (a smoke run)
    python bench/soak.py --minutes 5 --requests 0     # 5 minutes each, no request cap
    python bench/soak.py --databases sqlite --concurrency 32

Per database (SQLite, then PostgreSQL on --pg-url): starts `farebox sim` (instant pace) and
`farebox serve` (one process) with a catalog routed to it, makes three accounts (two funded, one
with a few cents), and drives a mixed load from one asyncio client until the request cap or the
time runs out, whichever comes first:
non-streamed and streamed chats (OpenAI format), Anthropic messages, embeddings, streams the
client cuts after the first chunk, requests refused for funds (402), bad requests (400) and free
reads (models list, balance). After a warm-up (`--warmup` requests) and at the end it reads the
gateway's RSS, its open file descriptors and sockets (/proc/PID/fd), and on PostgreSQL the
connections to its database (pg_stat_activity); RSS is sampled every `--sample-s` seconds too.
Then the gateway is stopped with SIGTERM (it flushes), and:

- RSS growth from after the warm-up to the end must stay under `--max-growth` (10 %);
- open descriptors and sockets at the end, idle, must not exceed those after the warm-up by
  more than `--fd-slack` (default 3 x concurrency + 8: the gateway keeps idle upstream
  connections pooled per provider, up to one per concurrent request in each of its three
  pools, so the count settles at a level set by the load's peaks; a leak grows with the
  number of requests instead). Descriptors are sampled with the RSS to show the plateau;
- on PostgreSQL, the gateway's connections at the end within 4 of those after the warm-up
  (SQLAlchemy's pool grows into its overflow at peaks) and none left after it stops;
- `farebox ledger check` must exit 0; each account's spend (`accounts.debits_posted`) must equal
  the sum of its history (`queries.price`), with no hold left open;
- no traceback in the server log.

Prints a JSON report per database and a PASS/FAIL line per check (exit 2 on any FAIL).
docs/performance/soak.md holds a run's result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from farebox_target import database, exceptions_in_log, ledger_facts
from load import free_port, log

ADMIN = "soak-admin-token"
SECRET = "farebox-soak-instance-secret-0123456789"
PRICE = {"input_per_1m": "0.10", "output_per_1m": "0.20"}
MIX = (  # (kind, weight)
    ("chat", 34),
    ("stream", 22),
    ("messages", 10),
    ("embeddings", 10),
    ("cut_stream", 5),
    ("poor", 5),
    ("bad", 5),
    ("read", 9),
)


def catalog(sim_url: str) -> dict[str, Any]:
    base = {"provider": "Soak", "date_added": "2026-01-01", "price": PRICE}
    chat = {**base, "type": "chat", "context": 128_000, "max_output": 4096}
    return {
        "replace_defaults": True,
        "providers": {
            "sim": {"kind": "openai", "base_url": f"{sim_url}/v1", "api_key_env": "SIM_KEY"},
            "simanthropic": {
                "kind": "anthropic",
                "base_url": f"{sim_url}/v1",
                "api_key_env": "SIM_KEY",
            },
        },
        "models": {
            "soak-chat": {**chat, "routes": [{"provider": "sim", "model": "sim-chat"}]},
            "soak-claude": {
                **chat,
                "tokenizer": "cl100k_base",
                "routes": [{"provider": "simanthropic", "model": "claude-sim"}],
            },
            "soak-embed": {
                **base,
                "type": "embedding",
                "context": 8191,
                "max_output": 0,
                "tokenizer": "cl100k_base",
                "routes": [{"provider": "sim", "model": "sim-embed"}],
            },
        },
    }


# --------------------------------------------------------------------------- /proc


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile", "Threads"):
            out[name] = int(value.split()[0])
    return out


def descriptors(pid: int) -> dict[str, int]:
    fds = sockets = 0
    for entry in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{entry}")
        except OSError:
            continue
        fds += 1
        sockets += target.startswith("socket:")
    return {"fds": fds, "sockets": sockets}


def pg_connections(db_url: str) -> int | None:
    if db_url.startswith("sqlite"):
        return None
    import psycopg

    name = db_url.rsplit("/", 1)[1]
    admin = db_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchone()
    return int(row[0]) if row else None


def snapshot(pid: int, db_url: str) -> dict[str, Any]:
    status = proc_status(pid)
    return {
        "rss_mb": round(status["VmRSS"] / 1024, 1),
        "anon_mb": round(status["RssAnon"] / 1024, 1),
        "threads": status["Threads"],
        **descriptors(pid),
        "pg_connections": pg_connections(db_url),
    }


# --------------------------------------------------------------------------- load


@dataclass
class Tally:
    sent: int = 0
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, status: int | str) -> None:
        bucket = self.by_kind.setdefault(kind, {})
        bucket[str(status)] = bucket.get(str(status), 0) + 1


EXPECTED = {
    "chat": {"200"},
    "stream": {"200"},
    "messages": {"200"},
    "embeddings": {"200"},
    "cut_stream": {"200"},
    "poor": {"402", "200"},  # a poor account pays while it can
    "bad": {"400", "422"},
    "read": {"200"},
}


async def one(
    session: aiohttp.ClientSession, url: str, kind: str, keys: dict[str, str], i: int
) -> int:
    rich = {"Authorization": f"Bearer {keys['rich' if i % 2 else 'rich2']}"}
    question = f"Question {i % 500}: say something about the number {i % 97}."
    chat = {"model": "soak-chat", "messages": [{"role": "user", "content": question}]}
    sim = {"sim": {"output_tokens": 8 + i % 24}}
    if kind == "chat":
        async with session.post(
            url + "/v1/chat/completions", json={**chat, **sim}, headers=rich
        ) as r:
            await r.read()
            return r.status
    if kind in ("stream", "cut_stream"):
        body = {**chat, **sim, "stream": True, "stream_options": {"include_usage": True}}
        async with session.post(url + "/v1/chat/completions", json=body, headers=rich) as r:
            if kind == "cut_stream":
                await r.content.readany()
                r.close()  # the client goes away mid-stream: cut, billed for what was sent
            else:
                await r.read()
            return r.status
    if kind == "messages":
        body = {
            "model": "soak-claude",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": question}],
            **sim,
        }
        headers = {"x-api-key": rich["Authorization"][7:], "anthropic-version": "2023-06-01"}
        async with session.post(url + "/v1/messages", json=body, headers=headers) as r:
            await r.read()
            return r.status
    if kind == "embeddings":
        body = {"model": "soak-embed", "input": [question, question[::-1]]}
        async with session.post(url + "/v1/embeddings", json=body, headers=rich) as r:
            await r.read()
            return r.status
    if kind == "poor":
        poor = {"Authorization": f"Bearer {keys['poor']}"}
        async with session.post(
            url + "/v1/chat/completions", json={**chat, **sim}, headers=poor
        ) as r:
            await r.read()
            return r.status
    if kind == "bad":
        bodies = [b"{", b'{"model": "soak-chat"}', b'{"model": 5, "messages": "x"}']
        async with session.post(
            url + "/v1/chat/completions",
            data=bodies[i % len(bodies)],
            headers={**rich, "Content-Type": "application/json"},
        ) as r:
            await r.read()
            return r.status
    async with session.get(url + "/v1/models", headers=rich) as r:  # "read"
        await r.read()
        return r.status


async def drive(
    url: str,
    keys: dict[str, str],
    tally: Tally,
    *,
    requests: int,
    seconds: float,
    concurrency: int,
    on_sample: Any = None,
    sample_s: float = 30.0,
) -> None:
    kinds = [k for k, w in MIX for _ in range(w)]
    rng = random.Random(7)
    deadline = time.monotonic() + seconds
    counter = iter(range(10**12))
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            i = next(counter)
            if requests and i >= requests:
                return
            kind = kinds[rng.randrange(len(kinds))]
            tally.sent += 1
            try:
                tally.count(kind, await one(session, url, kind, keys, i))
            except (aiohttp.ClientError, TimeoutError) as exc:
                name = type(exc).__name__
                tally.errors[name] = tally.errors.get(name, 0) + 1
                tally.count(kind, name)

    async def sampler() -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(min(sample_s, max(0.1, deadline - time.monotonic())))
            if on_sample is not None:
                on_sample()

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        sampling = asyncio.create_task(sampler())
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        sampling.cancel()


# --------------------------------------------------------------------------- one database


def spawn(name: str, args: list[str], env: dict[str, str], logdir: Path) -> subprocess.Popen[bytes]:
    with (logdir / f"{name}.log").open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "farebox", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def accounts(url: str) -> tuple[dict[str, str], dict[str, str]]:
    """API keys (rich, rich2 on a second account, poor) and their account ids."""
    keys, ids = {}, {}
    async with aiohttp.ClientSession() as s:
        for name, usd in (("rich", "100000"), ("rich2", "100000"), ("poor", "0.02")):
            async with s.post(url + "/accounts/create") as r:
                created = await r.json()
            async with s.post(
                url + "/admin/credits",
                json={"credit_id": created["credit_id"], "amount_usd": usd},
                headers={"Authorization": f"Bearer {ADMIN}"},
            ) as r:
                granted = await r.json()
                assert r.status == 200, granted
            keys[name] = created["api_key"]
            ids[name] = created["account_id"]
    return keys, ids


def account_ids(db_url: str) -> list[str]:
    """Every customer account (the soak's three), for the spend == history check."""
    sql = "SELECT account_id FROM queries GROUP BY account_id"
    if db_url.startswith("sqlite:///"):
        import sqlite3

        conn: Any = sqlite3.connect(db_url[len("sqlite:///") :])
    else:
        import psycopg

        conn = psycopg.connect(db_url, connect_timeout=5)
    try:
        return [str(row[0]) for row in conn.execute(sql).fetchall()]
    finally:
        conn.close()


def soak_one(kind: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    logdir = tmp / kind
    logdir.mkdir()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}
    sim_port, port = free_port(), free_port()
    sim = spawn(
        "sim", ["sim", "--port", str(sim_port), "--tokens-per-second", "0"], base_env, logdir
    )
    report: dict[str, Any] = {"database": kind}
    try:
        sim_url = f"http://127.0.0.1:{sim_port}"
        wait_http(sim_url + "/health", sim)
        (logdir / "catalog.json").write_text(json.dumps(catalog(sim_url)))
        with database(kind, tmp, args.pg_url) as db_url:
            env = {
                **base_env,
                "FAREBOX_DATABASE_URL": db_url,
                "FAREBOX_CATALOG": str(logdir / "catalog.json"),
                "FAREBOX_ADMIN_TOKEN": ADMIN,
                "FAREBOX_SECRET_KEY": SECRET,
                "SIM_KEY": "sim-key",
            }
            serve = spawn(
                "serve", ["serve", "--host", "127.0.0.1", "--port", str(port)], env, logdir
            )
            url = f"http://127.0.0.1:{port}"
            try:
                wait_http(url + "/healthz", serve)
                keys, _ = asyncio.run(accounts(url))
                tally = Tally()
                log(f"[{kind}] warm-up: {args.warmup} requests")
                asyncio.run(
                    drive(
                        url,
                        keys,
                        tally,
                        requests=args.warmup,
                        seconds=600,
                        concurrency=args.concurrency,
                    )
                )
                time.sleep(1)
                report["after_warmup"] = snapshot(serve.pid, db_url)
                samples: list[tuple[float, int, float, int]] = []
                started = time.monotonic()

                def sample() -> None:
                    rss = proc_status(serve.pid)["VmRSS"] / 1024
                    fds = descriptors(serve.pid)["fds"]
                    at = round(time.monotonic() - started, 1)
                    samples.append((at, tally.sent, round(rss, 1), fds))
                    log(f"[{kind}] {at:7.1f} s  sent {tally.sent:9d}  rss {rss:6.1f} MB  fds {fds}")

                log(f"[{kind}] soak: {args.requests or 'no cap on'} requests, {args.minutes} min")
                asyncio.run(
                    drive(
                        url,
                        keys,
                        tally,
                        requests=args.requests,
                        seconds=args.minutes * 60,
                        concurrency=args.concurrency,
                        on_sample=sample,
                        sample_s=args.sample_s,
                    )
                )
                elapsed = time.monotonic() - started
                time.sleep(2)  # idle: kept-alive client connections are closed by now
                report["end"] = snapshot(serve.pid, db_url)
                report["samples_s_sent_rss_fds"] = samples
                report["requests"] = tally.sent - args.warmup
                report["seconds"] = round(elapsed, 1)
                report["req_per_s"] = round(report["requests"] / elapsed, 1)
                report["statuses"] = tally.by_kind
                report["client_errors"] = tally.errors
            finally:
                stop(serve)
            check = subprocess.run(
                [sys.executable, "-m", "farebox", "ledger", "check"],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            report["ledger_check"] = {"exit": check.returncode, "output": check.stdout[-800:]}
            report["ledger"] = {a: ledger_facts(db_url, a) for a in account_ids(db_url)}
            report["pg_connections_after_stop"] = pg_connections(db_url)
    finally:
        stop(sim)
    report["tracebacks"] = exceptions_in_log((logdir / "serve.log").read_text(errors="replace"))
    return report


def verdicts(report: dict[str, Any], args: argparse.Namespace) -> list[tuple[str, bool]]:
    start, end = report["after_warmup"], report["end"]
    growth = (end["rss_mb"] - start["rss_mb"]) / start["rss_mb"]
    report["rss_growth_pct"] = round(100 * growth, 2)
    unexpected = {
        kind: {s: n for s, n in statuses.items() if s not in EXPECTED[kind]}
        for kind, statuses in report["statuses"].items()
    }
    unexpected = {k: v for k, v in unexpected.items() if v}
    ledger = report["ledger"].values()
    out = [
        (
            f"RSS growth {report['rss_growth_pct']} % < {100 * args.max_growth:g} %",
            growth < args.max_growth,
        ),
        (
            f"descriptors {start['fds']} -> {end['fds']}, sockets {start['sockets']} -> "
            f"{end['sockets']} (slack {args.fd_slack})",
            end["fds"] <= start["fds"] + args.fd_slack
            and end["sockets"] <= start["sockets"] + args.fd_slack,
        ),
        (
            f"ledger check exit {report['ledger_check']['exit']}",
            report["ledger_check"]["exit"] == 0,
        ),
        (
            "spend == sum of history for every account, no open hold",
            bool(ledger)
            and all(f["spend_equals_history"] and f["open_holds"] == 0 for f in ledger),
        ),
        (f"only expected statuses {unexpected or ''}", not unexpected),
        (f"no tracebacks in the server log {report['tracebacks'] or ''}", not report["tracebacks"]),
    ]
    if start["pg_connections"] is not None:
        after_stop = report["pg_connections_after_stop"]
        out.append(
            (
                f"PostgreSQL connections {start['pg_connections']} -> {end['pg_connections']} "
                f"(slack 4: the pool grows into its overflow at peaks), {after_stop} after stop",
                end["pg_connections"] <= start["pg_connections"] + 4 and after_stop == 0,
            )
        )
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=1_000_000, help="cap per database (0: none)")
    ap.add_argument("--minutes", type=float, default=30.0, help="time cap per database")
    ap.add_argument("--quick", action="store_true", help="2 minutes per database, no request cap")
    ap.add_argument("--databases", default="sqlite,postgresql")
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=3000, help="requests before the start reading")
    ap.add_argument("--sample-s", type=float, default=30.0)
    ap.add_argument("--max-growth", type=float, default=0.10)
    ap.add_argument("--fd-slack", type=int, help="default: 3 x concurrency + 8")
    ap.add_argument("--json", type=Path, help="also write the reports here")
    args = ap.parse_args(argv)
    if args.quick:
        args.minutes, args.requests = 2.0, 0
    if args.fd_slack is None:
        args.fd_slack = 3 * args.concurrency + 8
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reports, failed = [], False
    with tempfile.TemporaryDirectory(prefix="farebox-soak-") as tmp:
        for kind in args.databases.split(","):
            report = soak_one(kind, args, Path(tmp))
            checks = verdicts(report, args)
            report["checks"] = [(text, "PASS" if ok else "FAIL") for text, ok in checks]
            reports.append(report)
            print(json.dumps(report, indent=2), flush=True)
            for text, ok in checks:
                print(f"{'PASS' if ok else 'FAIL'} [{kind}] {text}", flush=True)
                failed |= not ok
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2))
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
