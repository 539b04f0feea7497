#!/usr/bin/env python3
"""The cost of per-key rate limits on the hot path: none, in-process, Redis-backed, in one run.

Starts the fake upstream (core 0) and three `farebox serve` processes on SQLite (core 1, one
worker each, all up at once): `none` (the key has no limits), `memory` (the key has rpm_limit,
tpm_limit and allowed_models, counted in the process) and `redis` (the same key limits, counted
in Redis through FAREBOX_REDIS_URL, with its own prefix). Limits are set high enough never to
refuse: what is measured is their bookkeeping. Each round runs `wrk -t1 -cN` (core 0) on each
target back to back, non-streamed (`--rounds` rounds, so a noisy neighbour hits all three alike),
and the table gives the median req/s, p50, the target's CPU µs per request, and the ratio of each
to `none`.

    . .venv/bin/activate && python bench/limits.py             # 3 rounds × 10 s at c=16
    python bench/limits.py --duration 5 --rounds 2 --conc 16,64
    python bench/limits.py --redis-url redis://127.0.0.1:6379/0

Needs what bench/run.py needs (wrk, taskset, the shared sticks) and a Redis (127.0.0.1:6379).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import procstat
from farebox_target import (
    create_account,
    farebox_env,
    pinned,
    serve_argv,
    upstream_argv,
    write_catalog,
)
from load import MODEL, Processes, free_port, log, run_wrk, wait_port

REPO = Path(__file__).resolve().parent.parent
TARGETS = ("none", "memory", "redis")
LIMITS = {"rpm_limit": 1_000_000, "tpm_limit": 10_000_000_000, "allowed_models": ["fake-*"]}


def start_target(
    name: str, args: argparse.Namespace, tmp: Path, catalog: Path, procs: Processes
) -> dict[str, Any]:
    """A serving farebox and the key wrk sends (with LIMITS unless `name` is none)."""
    folder = tmp / name
    folder.mkdir()
    db_url = f"sqlite:///{folder / 'farebox-bench.db'}"
    env = farebox_env(db_url, catalog)
    if name == "redis":
        env.update(
            FAREBOX_REDIS_URL=args.redis_url, FAREBOX_REDIS_PREFIX=f"bench-{uuid.uuid4().hex}:"
        )
    acct = create_account(args.farebox, env, folder)
    port = free_port()
    proc = procs.start(
        f"farebox-{name}",
        pinned(1, serve_argv(args.farebox, port)),
        env,
    )
    wait_port(port, proc, timeout=60)
    base = f"http://127.0.0.1:{port}"
    key = acct["api_key"]
    if name != "none":
        r = httpx.post(
            f"{base}/keys",
            json={"name": "limited", **LIMITS},
            headers={"x-credit-id": acct["credit_id"]},
            timeout=30,
        )
        r.raise_for_status()
        key = r.json()["data"]["api_key"]
    return {"name": name, "url": f"{base}/v1/chat/completions", "key": key, "proc": proc}


def measure(
    args: argparse.Namespace, target: dict[str, Any], conc: int, procs: Processes
) -> dict[str, Any]:
    run_wrk(args, target["url"], conc, args.warmup, target["key"], "nonstream", procs)
    before = procstat.tree_cpu_s(target["proc"].pid)
    result = run_wrk(args, target["url"], conc, args.duration, target["key"], "nonstream", procs)
    cpu = procstat.tree_cpu_s(target["proc"].pid) - before
    requests = max(1, int(result["requests"]))
    result["cpu_us_per_req"] = cpu * 1e6 / requests
    if result.get("non200") or result["socket_errors"]:
        log(
            f"!! {target['name']} c={conc}: {result.get('non200')} non-200, {result['socket_errors']} socket errors"
        )
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sticks", type=Path, default=REPO / ".." / "shared" / "bench")
    ap.add_argument("--duration", type=int, default=10, help="measured seconds per cell")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up seconds per cell")
    ap.add_argument("--rounds", type=int, default=3, help="rounds over the three targets")
    ap.add_argument("--conc", default="16", help="concurrencies, comma-separated")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = ap.parse_args(argv)
    args.lua = args.sticks / "post.lua"
    args.wrk = shutil.which("wrk")
    if not args.wrk or not shutil.which("taskset"):
        ap.error("needs wrk (apt-get install -y wrk) and taskset")
    venv_bin = Path(sys.executable).parent
    args.farebox = (
        str(venv_bin / "farebox") if (venv_bin / "farebox").exists() else shutil.which("farebox")
    )
    concs = [int(c) for c in args.conc.split(",")]
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="farebox-limits-bench-") as tmpdir:
        tmp = Path(tmpdir)
        procs = Processes(tmp)
        try:
            upstream_port = free_port()
            upstream = procs.start(
                "fake_upstream",
                upstream_argv(args.sticks, upstream_port),
                {},
            )
            procs.upstream = upstream
            wait_port(upstream_port, upstream)
            catalog = tmp / "catalog.json"
            write_catalog(catalog, upstream_port)
            targets = [start_target(name, args, tmp, catalog, procs) for name in TARGETS]
            for round_no in range(args.rounds):
                for conc in concs:
                    for target in targets:
                        log(f"round {round_no + 1}/{args.rounds} c={conc} {target['name']}")
                        results.setdefault((target["name"], conc), []).append(
                            measure(args, target, conc, procs)
                        )
        finally:
            procs.stop_all()
    print(
        f"\nPer-key rate limits on the hot path ({MODEL}, non-stream, SQLite, 1 worker; "
        f"median of {args.rounds} rounds of {args.duration} s)\n"
    )
    print("| limits | conc | req/s | p50 ms | CPU µs/req | req/s vs none | CPU vs none |")
    print("|---|---|---|---|---|---|---|")
    for conc in concs:
        base = _median(results[("none", conc)], "rps")
        base_cpu = _median(results[("none", conc)], "cpu_us_per_req")
        for name in TARGETS:
            rows = results[(name, conc)]
            rps, cpu = _median(rows, "rps"), _median(rows, "cpu_us_per_req")
            p50 = _median(rows, "p50_ms")
            print(
                f"| {name} | {conc} | {rps:,.0f} | {p50:.2f} | {cpu:.0f} | {rps / base:.3f} | {cpu / base_cpu:.3f} |"
            )
    return 0


def _median(rows: list[dict[str, Any]], field: str) -> float:
    return float(statistics.median(float(r[field]) for r in rows))


if __name__ == "__main__":
    sys.exit(main())
