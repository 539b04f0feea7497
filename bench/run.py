#!/usr/bin/env python3
"""farebox benchmark: farebox beside the shared measuring sticks, in one run, on one machine.

Starts the fake upstream (core 0), then for each target (direct, lean_proxy, farebox-sqlite,
farebox-postgres) starts the target on core 1, drives it with wrk (-t1, core 0) at each
concurrency and mode (warm-up, then a measured run), and records req/s, latency, the target's CPU
time per request and its RSS. The farebox cells also prove the ledger afterwards. Prints a
markdown table with ratios against lean_proxy and PASS/MISS against the targets of DESIGN.md §3,
and saves the raw results to bench/results/<timestamp>.json.

    . .venv/bin/activate && python bench/run.py            # full run, ~10 min
    python bench/run.py --quick                             # 5 s cells
    python bench/run.py --cells lean_proxy,farebox-sqlite --conc 16 --modes nonstream
    python bench/run.py --quick --profile                   # + py-spy of farebox at c=16
    python bench/run.py --quick --profile --profile-conc 1  # ... at c=1

See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import procstat
import profiles
from farebox_target import (
    create_account,
    database,
    exceptions_in_log,
    farebox_env,
    ledger_facts,
    pinned,
    serve_argv,
    upstream_argv,
    write_catalog,
)
from litellm_target import litellm_target
from load import BODY, Processes, Target, free_port, log, probe, run_wrk, wait_port
from report import ALL_MODES, report

REPO = Path(__file__).resolve().parent.parent
ALL_CELLS = ("direct", "lean_proxy", "farebox-sqlite", "farebox-postgres", "litellm")
DEFAULT_CELLS = ALL_CELLS[:4]
"""litellm runs only when asked for (`--cells …,litellm --litellm PATH`): it lives in a venv
of its own (`pip install 'litellm[proxy]==1.108.7'`)."""
# farebox without its request layer (no metrics, no access lines: FAREBOX_METRICS=off and
# FAREBOX_ACCESS_LOG=off), run beside the default cells by bench/observe_cost.py.
# Halfway: metrics alone (FAREBOX_ACCESS_LOG=off) or access lines alone (FAREBOX_METRICS=off),
# to split what the layer costs end to end.
VARIANTS = {
    "bare": {"FAREBOX_METRICS": "off", "FAREBOX_ACCESS_LOG": "off"},
    "metrics": {"FAREBOX_ACCESS_LOG": "off"},
    "log": {"FAREBOX_METRICS": "off"},
}
BARE_CELLS = tuple(f"farebox-{db}-{v}" for v in VARIANTS for db in ("sqlite", "postgres"))
LEAN_KEY = "sk-bench-lean"
PG_ADMIN_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


# --------------------------------------------------------------------------- targets


def measure_cell(
    args: argparse.Namespace,
    target: Target,
    upstream_pid: int,
    mode: str,
    conc: int,
    procs: Processes,
) -> dict[str, Any]:
    if args.warmup > 0:
        warm = run_wrk(args, target.url, conc, args.warmup, target.key, mode, procs)
        target.extra["completed"] = target.extra.get("completed", 0) + warm["requests"]
        target.extra["inflight_max"] = target.extra.get("inflight_max", 0) + conc
        if warm["non200"] or warm["socket_errors"]:
            log(f"  !! warm-up: non200={warm['non200']} socket errors={warm['socket_errors']}")
    pid = target.proc.pid
    cpu0, up0, cores0 = (
        procstat.tree_cpu_s(pid),
        procstat.tree_cpu_s(upstream_pid),
        procstat.cores(),
    )
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    res = run_wrk(args, target.url, conc, args.duration, target.key, mode, procs)
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu1, up1, cores1 = (
        procstat.tree_cpu_s(pid),
        procstat.tree_cpu_s(upstream_pid),
        procstat.cores(),
    )
    wrk_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    ours = (cpu1 - cpu0) + wrk_cpu + (0 if pid == upstream_pid else up1 - up0)
    all_busy = procstat.busy_s(cores0, cores1)
    target.extra["completed"] = target.extra.get("completed", 0) + res["requests"]
    target.extra["inflight_max"] = target.extra.get("inflight_max", 0) + conc
    n = max(res["requests"], 1)
    cell = {
        "target": target.name,
        "mode": mode,
        "conc": conc,
        **res,
        "cpu_s": cpu1 - cpu0,
        "cpu_us_per_req": (cpu1 - cpu0) * 1e6 / n,
        "upstream_cpu_us_per_req": (up1 - up0) * 1e6 / n,
        "core_busy_pct": procstat.busy_pct(cores0, cores1),
        "wrk_cpu_s": wrk_cpu,
        # CPU that neither the target, the upstream nor wrk used, over both cores, in % of
        # one core: other people's processes (and the kernel's work on their behalf).
        "other_cpu_pct": max(0.0, 100.0 * (all_busy - ours) / wall),
        "rss_mb": procstat.tree_rss_mb(pid),
    }
    busy = cell["core_busy_pct"]
    log(
        f"  {target.name:17s} {mode:9s} c={conc:<3d} {res['rps']:9.1f} req/s  "
        f"p50 {res['p50_ms']:.3f} ms  p99 {res['p99_ms']:.3f} ms  "
        f"cpu {cell['cpu_us_per_req']:.0f} us/req  rss {cell['rss_mb']:.1f} MB  "
        f"non200 {res['non200']}  sockerr {res['socket_errors']}  "
        f"core0/1 busy {busy.get(0, 0):.0f}/{busy.get(1, 0):.0f}%  "
        f"other procs {cell['other_cpu_pct']:.0f}% of a core"
    )
    if res["non200"] or res["socket_errors"]:
        log(
            f"  !!!!! {target.name} {mode} c={conc}: {res['non200']} NON-200 responses, "
            f"{res['socket_errors']} socket errors !!!!!"
        )
    return cell


def run_profile(
    args: argparse.Namespace, target: Target, mode: str, procs: Processes, stamp: str
) -> dict[str, Any]:
    """py-spy record on the target during a separate run at --profile-conc (not one of the
    measured cells)."""
    conc = args.profile_conc
    out = args.results / f"{stamp}-{target.name}-{mode}-c{conc}.collapsed"
    seconds = args.profile_duration
    spy = procs.start_piped(
        "py-spy",
        [
            args.py_spy,
            "record",
            "--pid",
            str(target.proc.pid),
            "--rate",
            str(args.profile_rate),
            "--format",
            "raw",
            "--threads",
            *(["--nonblocking"] if args.profile_nonblocking else []),
            "--duration",
            str(seconds),
            "--output",
            str(out),
            *(["--gil"] if args.profile_gil else []),
        ],
    )
    try:
        time.sleep(0.5)
        res = run_wrk(args, target.url, conc, seconds, target.key, mode, procs)
    finally:
        text = procs.collect(spy, seconds + 30)
    target.extra["completed"] = target.extra.get("completed", 0) + res["requests"]
    target.extra["inflight_max"] = target.extra.get("inflight_max", 0) + conc
    if not out.exists():
        log(f"  py-spy wrote nothing: {text.decode(errors='replace')[-1000:]}")
        return {"error": text.decode(errors="replace")[-1000:]}
    summary = profiles.summarise(out.read_text(), top=args.profile_top)
    summary.update(
        file=str(out),
        mode=mode,
        conc=conc,
        seconds=seconds,
        rps_while_profiled=res["rps"],
        gil_only=args.profile_gil,
        nonblocking=args.profile_nonblocking,
    )
    return summary


@contextlib.contextmanager
def start_target(
    name: str,
    args: argparse.Namespace,
    procs: Processes,
    tmp: Path,
    upstream_port: int,
    catalog: Path,
) -> Iterator[Target]:
    if name == "direct":
        # The fake upstream itself (already running, core 0).
        assert procs.upstream is not None
        yield Target(
            name, f"http://127.0.0.1:{upstream_port}/v1/chat/completions", "none", procs.upstream
        )
        return
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    if name == "lean_proxy":
        env = {**os.environ, "UPSTREAM": f"http://127.0.0.1:{upstream_port}"}
        proc = procs.start(
            name,
            ["taskset", "-c", "1", sys.executable, str(args.sticks / "lean_proxy.py"), str(port)],
            env,
        )
        try:
            try:
                wait_port(port, proc)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}\n--- {name} log:\n{procs.tail(name, 25)}") from None
            yield Target(name, url, LEAN_KEY, proc)
        finally:
            procs.stop(proc)
        return
    if name == "litellm":
        with litellm_target(args, procs, tmp, port, upstream_port) as target:
            yield target
        return
    kind = name.split("-")[1]
    tmp = tmp / name  # each farebox cell its own SQLite file
    tmp.mkdir(exist_ok=True)
    with database(kind, tmp, args.pg_url) as db_url:
        env = farebox_env(db_url, catalog)
        variant = name.split("-")[2] if name.count("-") >= 2 else None
        if variant is not None:
            env.update(VARIANTS[variant])
        acct = create_account(args.farebox, env, tmp)
        proc = procs.start(
            name,
            pinned(1, serve_argv(args.farebox, port)),
            env,
        )
        target = Target(
            name,
            url,
            acct["api_key"],
            proc,
            {"account_id": acct["account_id"], "db": db_url.split("://")[0]},
        )
        try:
            try:
                wait_port(port, proc, timeout=60)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}\n--- {name} log:\n{procs.tail(name, 25)}") from None
            yield target
        finally:
            procs.stop(proc, grace=15.0)
            target.extra["exit_code"] = proc.returncode
            text = (procs.logdir / f"{name}.log").read_text(errors="replace")
            target.extra["log_tracebacks"] = text.count("Traceback")
            target.extra["log_errors"] = sum(
                1 for line in text.splitlines() if "ERROR" in line or "CRITICAL" in line
            )
            target.extra["log_tail"] = procs.tail(name, 15)
            target.extra["log_exceptions"] = exceptions_in_log(text)
            chk = subprocess.run(
                [args.farebox, "ledger", "check"],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                cwd=tmp,
            )
            target.extra["ledger_check"] = {
                "exit_code": chk.returncode,
                "output": (chk.stdout + chk.stderr).strip()[-3000:],
            }
            try:
                target.extra["ledger"] = ledger_facts(db_url, acct["account_id"])
            except Exception as exc:  # report, never hide the rest of the run
                target.extra["ledger"] = {"error": repr(exc)}


# --------------------------------------------------------------------------- report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--sticks",
        type=Path,
        default=REPO / ".." / "shared" / "bench",
        help="directory of fake_upstream.py, lean_proxy.py, post.lua",
    )
    ap.add_argument("--duration", type=int, default=20, help="measured seconds per cell")
    ap.add_argument("--warmup", type=int, default=3, help="warm-up seconds per cell (0: none)")
    ap.add_argument("--quick", action="store_true", help="5 s measured runs, 2 s warm-ups")
    ap.add_argument(
        "--cells",
        default=",".join(DEFAULT_CELLS),
        help=f"targets, comma-separated, of {', '.join(ALL_CELLS + BARE_CELLS)}",
    )
    ap.add_argument("--litellm", default=None, help="the litellm CLI, for the litellm cell")
    ap.add_argument("--conc", default="1,16,64", help="concurrencies, comma-separated")
    ap.add_argument("--modes", default=",".join(ALL_MODES), help="nonstream,stream")
    ap.add_argument(
        "--pg-url",
        default=PG_ADMIN_DEFAULT,
        help="PostgreSQL server to create the fresh database on",
    )
    ap.add_argument(
        "--order",
        choices=("interleaved", "rotated", "sequential"),
        default="interleaved",
        help="interleaved: all targets up at once, each (mode, conc) run across the targets "
        "back to back (fairer on a noisy machine); rotated: the same, each round starting one "
        "target later; sequential: target after target",
    )
    ap.add_argument("--lua", type=Path, default=None, help="wrk script (default: STICKS/post.lua)")
    ap.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help="run a copy of the wrk script with this max_tokens instead of post.lua's 32 (the "
        "fake upstream ignores it; farebox cuts a stream at it)",
    )
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="after its cells, py-spy each farebox target at --profile-conc per mode",
    )
    ap.add_argument("--profile-duration", type=int, default=15)
    ap.add_argument("--profile-conc", type=int, default=16, help="concurrency while profiled")
    ap.add_argument("--profile-rate", type=int, default=250, help="py-spy samples per second")
    ap.add_argument("--profile-top", type=int, default=25)
    ap.add_argument(
        "--profile-nonblocking",
        action="store_true",
        help="py-spy --nonblocking: no pauses, but stacks may be inconsistent",
    )
    ap.add_argument(
        "--profile-gil",
        action="store_true",
        help="sample only the thread holding the GIL (py-spy --gil)",
    )
    ap.add_argument("--py-spy", default=None, help="py-spy binary (default: PATH, venv, /tmp)")
    args = ap.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 5, 2
    args.sticks = args.sticks.resolve()
    args.lua = (args.lua or args.sticks / "post.lua").resolve()
    args.cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    args.conc = [int(c) for c in args.conc.split(",") if c.strip()]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for c in args.cells:
        if c not in ALL_CELLS + BARE_CELLS:
            ap.error(f"unknown cell {c!r} (known: {', '.join(ALL_CELLS + BARE_CELLS)})")
    for m in args.modes:
        if m not in ALL_MODES:
            ap.error(f"unknown mode {m!r} (known: {', '.join(ALL_MODES)})")
    for f in ("fake_upstream.py", "lean_proxy.py"):
        if not (args.sticks / f).exists():
            ap.error(f"{args.sticks / f} not found (use --sticks)")
    if not args.lua.exists():
        ap.error(f"{args.lua} not found")
    args.wrk = shutil.which("wrk")
    if not args.wrk:
        ap.error("wrk not found: apt-get install -y wrk")
    if not shutil.which("taskset"):
        ap.error("taskset not found (util-linux)")
    venv_bin = Path(sys.executable).parent
    args.farebox = (
        str(venv_bin / "farebox") if (venv_bin / "farebox").exists() else shutil.which("farebox")
    )
    if any(c.startswith("farebox") for c in args.cells) and not args.farebox:
        ap.error("farebox not found: activate the venv (. .venv/bin/activate)")
    if args.profile:
        cand = [
            args.py_spy,
            shutil.which("py-spy"),
            str(venv_bin / "py-spy"),
            "/tmp/pyspy-venv/bin/py-spy",
        ]
        args.py_spy = next((c for c in cand if c and Path(c).exists()), None)
        if not args.py_spy:
            ap.error("--profile needs py-spy (pip install py-spy, or --py-spy PATH)")
    return args


def versions() -> dict[str, Any]:
    out: dict[str, Any] = {"python": platform.python_version()}
    for mod in ("aiohttp", "uvloop", "orjson", "uvicorn", "starlette", "farebox"):
        with contextlib.suppress(Exception):
            out[mod] = __import__(mod).__version__
    with contextlib.suppress(Exception):
        out["wrk"] = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split(
            "\n"
        )[0]
    with contextlib.suppress(Exception):
        out["git"] = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    return out


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # same clean-up path as Ctrl-C


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    args.results.mkdir(parents=True, exist_ok=True)
    n_cells = len(args.cells) * len(args.modes) * len(args.conc)
    log(
        f"farebox bench {stamp}: {n_cells} cells × ({args.warmup} s + {args.duration} s) "
        f"≈ {n_cells * (args.warmup + args.duration) / 60:.1f} min; cores: {os.cpu_count()}"
    )
    if (os.cpu_count() or 0) < 2:
        log("!! fewer than 2 cores: pinning to core 1 will fail")
    cells: list[dict[str, Any]] = []
    targets: dict[str, dict[str, Any]] = {}
    meta = {
        "stamp": stamp,
        "argv": sys.argv,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "sticks": str(args.sticks),
        "lua": str(args.lua),
        "host": platform.node(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "versions": versions(),
    }
    tmp = Path(tempfile.mkdtemp(prefix="farebox-bench-"))
    procs = Processes(tmp)
    if args.max_tokens is not None:
        needle, repl = '"max_tokens":32', f'"max_tokens":{args.max_tokens}'
        text = args.lua.read_text()
        if needle not in text:
            log(f"!! {args.lua} has no {needle}: --max-tokens ignored")
        else:
            lua = tmp / "post_max_tokens.lua"
            lua.write_text(text.replace(needle, repl))
            args.lua = lua
            for mode in BODY:
                BODY[mode] = BODY[mode].replace(needle.encode(), repl.encode())
            meta["max_tokens"] = args.max_tokens
    interrupted = False
    try:
        upstream_port = free_port()
        upstream = procs.start(
            "fake_upstream",
            upstream_argv(args.sticks, upstream_port),
            dict(os.environ),
        )
        procs.upstream = upstream
        wait_port(upstream_port, upstream)
        catalog = tmp / "catalog.json"
        write_catalog(catalog, upstream_port)
        started: dict[str, Target] = {}
        with contextlib.ExitStack() as stack:
            for name in args.cells:
                log(f"== start {name}")
                target = stack.enter_context(
                    start_target(name, args, procs, tmp, upstream_port, catalog)
                )
                started[name] = target
                targets[name] = target.extra  # filled further as the target stops and is checked
                target.extra["probe"] = {m: probe(target.url, target.key, m) for m in args.modes}
                target.extra["completed"] = len(args.modes)
                for m, p in target.extra["probe"].items():
                    if p["status"] != 200:
                        raise RuntimeError(
                            f"{name} {m} probe answered {p['status']}: {p.get('body')}"
                        )
                    log(
                        f"  probe {m}: events={p.get('events', '-')} finish={p['finish_reasons']} "
                        f"usage={p['usage']}"
                    )
            plan = [(n, m, c) for n in args.cells for m in args.modes for c in args.conc]
            if args.order in ("interleaved", "rotated"):
                # Same (mode, conc) back to back across targets: a noisy neighbour's burst then
                # hits a cell and its baseline alike. Rotated: each round starts one target
                # later, so no target is always the one measured first.
                rounds = [(m, c) for m in args.modes for c in args.conc]
                plan = []
                for i, (m, c) in enumerate(rounds):
                    shift = i % len(args.cells) if args.order == "rotated" else 0
                    plan += [(n, m, c) for n in args.cells[shift:] + args.cells[:shift]]
            log("== measuring")
            for name, mode, conc in plan:
                cells.append(measure_cell(args, started[name], upstream.pid, mode, conc, procs))
            if args.profile:
                for name, target in started.items():
                    if name.startswith("farebox"):
                        log(f"== profiling {name}")
                        target.extra["profile"] = {
                            m: run_profile(args, target, m, procs, stamp) for m in args.modes
                        }
            log("== stopping targets, checking ledgers")
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: stopping everything")
    except Exception as exc:
        failure = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, RuntimeError):
            traceback.print_exc()
        log(f"!! the run failed: {failure}")
        meta["failure"] = failure
    finally:
        procs.stop_all()
        logs = args.results / f"{stamp}-logs"
        with contextlib.suppress(OSError):
            logs.mkdir(exist_ok=True)
            for f in tmp.glob("*.log"):
                shutil.copy(f, logs / f.name)
            meta["logs"] = str(logs)
        shutil.rmtree(tmp, ignore_errors=True)
    if not cells:
        return 130 if interrupted else 1
    if "failure" in meta:
        interrupted = True  # report what was measured, then exit non-zero
    table, verdicts = report(cells, targets)
    out = args.results / f"{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "meta": meta,
                "cells": cells,
                "targets": targets,
                "verdicts": verdicts,
                "interrupted": interrupted,
            },
            indent=2,
        )
    )
    print(
        f"\n## farebox bench {stamp} ({args.duration} s cells after {args.warmup} s warm-up; "
        f"wrk -t1 + fake upstream on core 0, target on core 1)\n"
    )
    print(table)
    print()
    for v in verdicts:
        print(v)
    for name, extra in targets.items():
        for mode, prof in (extra.get("profile") or {}).items():
            print()
            print(profiles.render(name, mode, prof))
    print(f"\nraw results: {out}")
    if interrupted:
        return 130
    failed = any(v.startswith("FAIL") for v in verdicts)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
