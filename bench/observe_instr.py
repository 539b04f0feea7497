#!/usr/bin/env python3
"""What the request layer costs end to end, counted in instructions instead of timed.

On a shared machine CPU time per request moves by 10-15 % from one cell to the next, more than
the layer costs. This runs `farebox serve` (SQLite, one worker) under valgrind's callgrind, once
per variant (shipped; bare: FAREBOX_METRICS=off and FAREBOX_ACCESS_LOG=off; metrics only; access
lines only), sends it a warm-up, then counts the server's user-space instructions over a fixed
number of requests (`--requests`, `--conc` at a time, the chat body of bench/run.py). It also
gives the server's write-like system calls per request (/proc/PID/io's syscw), which callgrind
cannot see. A variant's count still moves by about ±3 % between runs: the event loop's and the
ledger's batching follow the machine's load.

    .venv/bin/python bench/observe_instr.py                    # the four variants, ~4 min
    .venv/bin/python bench/observe_instr.py --variants shipped,bare --requests 1000
    .venv/bin/python bench/observe_instr.py --mode stream --variants shipped \
        --baseline-src /path/to/older/checkout/src     # adds "baseline": that tree, shipped

Timers (the request layer's 0.1 s batches, the metrics' 0.5 s flush) fire per wall-clock second,
and a request under valgrind takes ~50× longer: a batch holds only a few requests, so what the
batching saves is understated here, and the timers' own cost overstated.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from farebox_target import (  # noqa: E402
    create_account,
    farebox_env,
    pinned,
    serve_argv,
    upstream_argv,
    write_catalog,
)
from load import BODY, free_port, wait_port  # noqa: E402

VARIANTS = {
    "shipped": {},
    "bare": {"FAREBOX_METRICS": "off", "FAREBOX_ACCESS_LOG": "off"},
    "metrics": {"FAREBOX_ACCESS_LOG": "off"},
    "log": {"FAREBOX_METRICS": "off"},
}


async def _load(port: int, key: str, requests: int, conc: int, mode: str) -> int:
    """`requests` chat POSTs, `conc` at a time, on kept-alive connections; how many were 200."""
    from farebox.providers.h1 import H1Pool

    pool = H1Pool(30.0)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    todo = iter(range(requests))
    ok = 0

    async def worker() -> None:
        nonlocal ok
        for _ in todo:
            response = await pool.post(url, BODY[mode], headers)
            while await response.readany(60.0):
                pass
            ok += response.status == 200

    try:
        await asyncio.gather(*(worker() for _ in range(conc)))
    finally:
        await pool.close()
    return ok


def _syscw(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    return 0


def _total_ir(path: Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def measure(
    name: str, args: argparse.Namespace, tmp: Path, upstream_port: int, run: int
) -> dict[str, float]:
    work = tmp / f"{name}-{run}"
    work.mkdir()
    catalog = work / "catalog.json"
    write_catalog(catalog, upstream_port)
    env = farebox_env(f"sqlite:///{work / 'bench.db'}", catalog)
    if name == "baseline":
        env["PYTHONPATH"] = str(args.baseline_src)  # another checkout's farebox, as shipped
    else:
        env.update(VARIANTS[name])
    key = create_account(args.farebox, env, work)["api_key"]
    port = free_port()
    out = work / "callgrind.out"
    log = (work / "server.log").open("wb")
    callgrind = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
    ]
    argv = pinned(1, [*callgrind, *serve_argv(args.farebox, port)])
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    try:
        wait_port(port, proc, timeout=600)
        ok = asyncio.run(_load(port, key, args.warmup, args.conc, args.mode))
        time.sleep(1.0)  # the warm-up's group commits and access lines are written
        subprocess.run(
            ["callgrind_control", "--zero", str(proc.pid)], check=True, capture_output=True
        )
        subprocess.run(
            ["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True
        )
        writes0 = _syscw(proc.pid)
        ok = asyncio.run(_load(port, key, args.requests, args.conc, args.mode))
        time.sleep(1.0)  # this window's own after-work (commits, the lines' flush)
        writes = _syscw(proc.pid) - writes0
        subprocess.run(
            ["callgrind_control", "--dump", str(proc.pid)], check=True, capture_output=True
        )
        subprocess.run(
            ["callgrind_control", "-i", "off", str(proc.pid)], check=True, capture_output=True
        )
    finally:
        proc.terminate()
        proc.wait(120)
        log.close()
    if ok != args.requests:
        raise RuntimeError(f"{name}: {args.requests - ok} requests were not 200")
    dumps = sorted(work.glob("callgrind.out*"), key=lambda p: p.stat().st_mtime)
    ir = max(_total_ir(p) for p in dumps)  # the --dump of the window (the exit dump is ~empty)
    return {"ir_per_req": ir / args.requests, "writes_per_req": writes / args.requests}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--conc", type=int, default=16)
    ap.add_argument("--mode", choices=sorted(BODY), default="nonstream")
    ap.add_argument(
        "--baseline-src",
        type=Path,
        help="the src/ of another checkout: adds a variant 'baseline' that runs it as shipped",
    )
    ap.add_argument("--keep", action="store_true", help="keep the callgrind files (printed)")
    ap.add_argument("--sticks", type=Path, default=HERE.parent.parent / "shared" / "bench")
    args = ap.parse_args()
    args.farebox = str(Path(sys.executable).parent / "farebox")
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        ap.error("needs valgrind (apt-get install -y valgrind)")
    variants = args.variants.split(",")
    if args.baseline_src is not None:
        variants.append("baseline")
    tmp = Path(tempfile.mkdtemp(prefix="farebox-instr-"))
    upstream_port = free_port()
    upstream = subprocess.Popen(
        upstream_argv(args.sticks, upstream_port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results: dict[str, dict[str, float]] = {}
    try:
        wait_port(upstream_port, upstream)
        for name in variants:
            results[name] = measure(name, args, tmp, upstream_port, len(results))
            print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
    finally:
        upstream.terminate()
        upstream.wait(10)
        if args.keep:
            print(f"callgrind files under {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    base = results.get("bare")
    print("| variant | instructions/request | ÷ bare | write calls/request |")
    print("|---|---|---|---|")
    for name, r in results.items():
        ratio = f"{r['ir_per_req'] / base['ir_per_req']:.3f}" if base else "–"
        print(f"| {name} | {r['ir_per_req']:,.0f} | {ratio} | {r['writes_per_req']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
