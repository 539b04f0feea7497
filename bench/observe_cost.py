#!/usr/bin/env python3
"""What the request layer (metrics, access line, request id: src/farebox/observe/) costs.

Two measures, each against a baseline in the same run:

1. In process, no sockets: CPU µs per request of a bare ASGI app, and of the same app inside
   the request layer (metrics only; metrics and a text access line; metrics and a JSON line;
   lines written to /dev/null), in memory and in prometheus_client's multiprocess mode (what
   `--workers N` uses). Alternating runs, medians.
2. End to end (unless --no-e2e): bench/run.py's cells `farebox-<db>` (as shipped: metrics and
   access lines on) and `farebox-<db>-bare` (FAREBOX_METRICS=off, FAREBOX_ACCESS_LOG=off: no
   layer), interleaved, and the ratios req/s and CPU µs per request, on ÷ off.

    .venv/bin/python bench/observe_cost.py                       # both, c=16, 5 rounds, ~5 min
    .venv/bin/python bench/observe_cost.py --no-e2e              # the in-process part, ~20 s
    .venv/bin/python bench/observe_cost.py --db postgres --conc 16,64 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

HEADERS = [
    (b"host", b"x"),
    (b"content-type", b"application/json"),
    (b"authorization", b"Bearer sk-bench"),
    (b"content-length", b"2"),
]


async def _app(scope: Any, receive: Any, send: Any) -> None:
    """A stand-in for a paid chat request: a catalog model noted, a cost settled."""
    from farebox.observe.context import note_settled

    note_settled("fake-gpt", 12345)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


async def _per_request_us(app: Any, requests: int) -> float:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": HEADERS,
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Any) -> None:
        pass

    t0 = time.process_time()
    for _ in range(requests):
        await app(dict(scope), receive, send)
    return (time.process_time() - t0) * 1e6 / requests


def in_process(requests: int, runs: int) -> dict[str, float]:
    """µs per request of each variant (medians over `runs` alternating runs)."""
    import uvloop

    from farebox.observe.access_log import AccessLog
    from farebox.observe.metrics import Metrics
    from farebox.observe.middleware import Observed
    from farebox.observe.multiproc import active_dir

    metrics = Metrics(["fake-gpt"], active_dir())
    sink = open(os.devnull, "w")  # noqa: SIM115 - for the whole run
    hot = ["/v1/chat/completions"]
    variants = {
        "bare": _app,
        "metrics": Observed(_app, metrics, None, hot),
        "metrics+text": Observed(_app, metrics, AccessLog("text", sink), hot),
        "metrics+json": Observed(_app, metrics, AccessLog("json", sink), hot),
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}

    async def measure() -> None:
        for app in variants.values():  # warm-up: children bound, code paths hot
            await _per_request_us(app, 2000)
        for _ in range(runs):
            for name, app in variants.items():
                samples[name].append(await _per_request_us(app, requests))

    uvloop.run(measure())
    return {name: statistics.median(values) for name, values in samples.items()}


def _layer_report(title: str, us: dict[str, float]) -> list[str]:
    lines = [f"### {title}", "", "| variant | CPU µs/request | added µs |", "|---|---|---|"]
    for name, value in us.items():
        lines.append(f"| {name} | {value:.2f} | {value - us['bare']:+.2f} |")
    return lines


async def _call(app: Any, method: str, path: str, body: bytes, headers: list[Any]) -> bytes:
    """One request straight into the ASGI app; returns the body (the status must be 2xx)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-length", str(len(body)).encode()), *headers],
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    chunks: list[bytes] = []
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    if not 200 <= status < 300:
        raise RuntimeError(f"{method} {path}: {status} {b''.join(chunks)[:300]!r}")
    return b"".join(chunks)


def whole_gateway(args: argparse.Namespace) -> list[str]:
    """The whole gateway in this process (no uvicorn, no sockets in: the ASGI app called
    directly), twice: as shipped and without the layer, against the shared fake upstream (its
    own process). Alternating batches of requests, `args.app_conc` at a time; this process's
    CPU per request. Access lines go to a real file."""
    import uvloop
    from farebox_target import write_catalog
    from load import BODY, free_port, wait_port

    from farebox.app import create_app
    from farebox.catalog.loader import load_catalog
    from farebox.settings import Settings

    sticks = HERE.parent.parent / "shared" / "bench"
    port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, str(sticks / "fake_upstream.py"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tmp = Path(tempfile.mkdtemp(prefix="farebox-observe-bench-"))
    real_stdout = sys.stdout
    try:
        wait_port(port, upstream)
        write_catalog(tmp / "catalog.json", port)
        env = {"FAKE_KEY": "sk-fake-upstream"}
        catalog = load_catalog(tmp / "catalog.json", env=env)
        variants: dict[str, dict[str, str]] = {
            "on": {},
            "off": {"FAREBOX_METRICS": "off", "FAREBOX_ACCESS_LOG": "off"},
        }
        if args.app_split:  # where the cost goes: metrics alone, access lines alone
            variants["metrics only"] = {"FAREBOX_ACCESS_LOG": "off"}
            variants["lines only"] = {"FAREBOX_METRICS": "off"}
            variants["layer only"] = dict(variants["off"])
        variants["off again (noise)"] = dict(variants["off"])
        log_file = (tmp / "access.log").open("w")
        sys.stdout = log_file  # where the access lines go (bound when an app is made)
        apps = {
            name: create_app(
                Settings(
                    database_url=f"sqlite:///{tmp / name}.db",
                    admin_token="bench-admin",
                    signup_per_minute=0,
                    extra_env={**env, **flags},
                ),
                catalog=catalog,
            )
            for name, flags in variants.items()
        }
        if args.app_split:  # the layer with nothing on: request ids and the ContextVar only
            from farebox.observe.middleware import Observed

            bare_layer = apps["layer only"]
            bare_layer.wrap(lambda inner: Observed(inner, None, None, bare_layer.hot_paths))
        sys.stdout = real_stdout
        samples: dict[tuple[str, str], list[float]] = {}

        async def batch(app: Any, mode: str, key: str, n: int) -> None:
            auth = [(b"authorization", f"Bearer {key}".encode())]
            headers = [(b"content-type", b"application/json"), *auth]
            todo = iter(range(n))

            async def worker() -> None:
                for _ in todo:
                    await _call(app, "POST", "/v1/chat/completions", BODY[mode], headers)

            await asyncio.gather(*(worker() for _ in range(args.app_conc)))

        async def measure() -> None:
            keys = {}
            async with contextlib.AsyncExitStack() as stack:
                for name, app in apps.items():
                    await stack.enter_async_context(app.router.lifespan_context(app))
                    made = json.loads(await _call(app, "POST", "/accounts/create", b"", []))
                    grant = json.dumps({"credit_id": made["credit_id"], "amount_usd": "100000"})
                    admin = [(b"authorization", b"Bearer bench-admin")]
                    await _call(app, "POST", "/admin/credits", grant.encode(), admin)
                    keys[name] = made["api_key"]
                for mode in args.modes.split(","):
                    for name, app in apps.items():  # warm-up
                        await batch(app, mode, keys[name], args.app_requests // 4)
                    for _ in range(args.app_rounds):
                        for name, app in apps.items():
                            t0 = time.process_time()
                            await batch(app, mode, keys[name], args.app_requests)
                            # Its own after-work inside its window (group commits, the access
                            # lines' write 0.1 s later), not in the next variant's.
                            await app.state.services.ledger.flush()
                            await asyncio.sleep(0.15)
                            cpu = time.process_time() - t0
                            samples.setdefault((mode, name), []).append(
                                cpu * 1e6 / args.app_requests
                            )

        try:
            uvloop.run(measure())
        finally:
            log_file.close()
        lines = [
            f"### The whole gateway in process ({args.app_rounds} rounds of "
            f"{args.app_requests} requests, {args.app_conc} at a time, on and off alternating; "
            "SQLite)",
            "",
            "| mode | variant | CPU µs/req (median) | ÷ off (median; each round) |",
            "|---|---|---|---|",
        ]
        for mode in args.modes.split(","):
            off = samples[(mode, "off")]
            for name in variants:
                got = samples[(mode, name)]
                ratios = [a / b for a, b in zip(got, off, strict=True)]
                lines.append(
                    f"| {mode} | {name} | {statistics.median(got):.0f} | "
                    f"{statistics.median(ratios):.3f}; {', '.join(f'{r:.2f}' for r in ratios)} |"
                )
        written = (tmp / "access.log").read_text().count("\n")
        lines.append(f"\n(access lines written to a file by the 'on' gateway: {written})")
        return lines
    finally:
        sys.stdout = real_stdout
        upstream.terminate()
        upstream.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def e2e(args: argparse.Namespace) -> list[str]:
    import run

    results = HERE / "results"
    before = set(results.glob("*.json")) if results.exists() else set()
    cells = f"farebox-{args.db},farebox-{args.db}-bare"
    concs = ",".join([args.conc] * args.rounds)  # each round: on and off back to back
    argv = ["--cells", cells, "--conc", concs, "--modes", args.modes]
    argv += ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    code = run.main(argv)
    made = sorted(set(results.glob("*.json")) - before)
    if not made:
        return [f"bench/run.py wrote no results (exit {code})"]
    data = json.loads(made[-1].read_text())
    on_name, off_name = f"farebox-{args.db}", f"farebox-{args.db}-bare"
    pairs: dict[tuple[str, int], list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    waiting: dict[tuple[str, int], dict[str, Any]] = {}
    for cell in data["cells"]:  # in run order: an "on" cell, then its "off" twin
        key = (cell["mode"], cell["conc"])
        if cell["target"] == on_name:
            waiting[key] = cell
        elif cell["target"] == off_name and key in waiting:
            pairs.setdefault(key, []).append((waiting.pop(key), cell))
    lines = [
        f"### End to end ({args.db}, {args.duration} s cells, on and off back to back, "
        f"{args.rounds} rounds; {made[-1].name})",
        "",
        "| mode | conc | req/s on ÷ off (median; each round) | CPU µs/req on ÷ off (median; each "
        "round) | CPU µs/req on, off (medians) |",
        "|---|---|---|---|---|",
    ]
    for (mode, conc), rounds in pairs.items():
        rps = [on["rps"] / off["rps"] for on, off in rounds]
        cpu = [on["cpu_us_per_req"] / off["cpu_us_per_req"] for on, off in rounds]
        cpu_on = statistics.median(on["cpu_us_per_req"] for on, _ in rounds)
        cpu_off = statistics.median(off["cpu_us_per_req"] for _, off in rounds)
        lines.append(
            f"| {mode} | {conc} | {statistics.median(rps):.3f}; "
            f"{', '.join(f'{r:.2f}' for r in rps)} | {statistics.median(cpu):.3f}; "
            f"{', '.join(f'{r:.2f}' for r in cpu)} | {cpu_on:.0f}, {cpu_off:.0f} |"
        )
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=20000, help="per in-process run")
    ap.add_argument("--runs", type=int, default=9, help="alternating in-process runs")
    ap.add_argument("--no-e2e", action="store_true", help="no bench/run.py cells")
    ap.add_argument("--no-app", action="store_true", help="no whole gateway in process")
    ap.add_argument("--app-requests", type=int, default=2000, help="per whole-gateway batch")
    ap.add_argument("--app-rounds", type=int, default=7)
    ap.add_argument("--app-conc", type=int, default=16)
    ap.add_argument("--app-split", action="store_true", help="also metrics alone, lines alone")
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--conc", default="16")
    ap.add_argument("--modes", default="nonstream,stream")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5, help="on/off pairs per mode and concurrency")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:  # one in-process measure, as JSON (run with or without multiprocess mode)
        print(json.dumps(in_process(args.requests, args.runs)))
        return 0
    out: list[str] = []
    me = [sys.executable, __file__, "--child", "--requests", str(args.requests)]
    me += ["--runs", str(args.runs)]
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    memory = json.loads(subprocess.run(me, env=env, capture_output=True, check=True).stdout)
    out += _layer_report("The layer in process, values in memory (--workers 1)", memory)
    with tempfile.TemporaryDirectory(prefix="farebox-bench-metrics-") as mp:
        env["PROMETHEUS_MULTIPROC_DIR"] = mp
        shared = json.loads(subprocess.run(me, env=env, capture_output=True, check=True).stdout)
    out += ["", *_layer_report("The layer in process, multiprocess files (--workers N)", shared)]
    if not args.no_app:
        out += ["", *whole_gateway(args)]
    if not args.no_e2e:
        out += ["", *e2e(args)]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
