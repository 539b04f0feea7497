#!/usr/bin/env python3
"""One cell for several versions of farebox, interleaved, beside lean_proxy: is a change slower?

On a shared machine a cell's req/s moves by 10-25 % from one minute to the next, more than most
changes cost. This starts lean_proxy and one `farebox serve` per variant (all pinned to core 1,
the fake upstream and wrk to core 0, as bench/run.py does), then runs the same wrk cell on each
in turn, round after round, each round starting one target later, and reports per variant the
median over the rounds of its ratio to lean_proxy's req/s in the same round and of its CPU µs per
request (user and system). A variant is `NAME=SRC`: SRC is the `src/` of another checkout (a
`git worktree add ../old COMMIT`), run by this checkout's virtualenv with PYTHONPATH=SRC; an empty
SRC is this checkout. `--env NAME:KEY=VALUE` sets a variable for one variant.

    .venv/bin/python bench/versions.py --variant now= --variant before=../old/src
    .venv/bin/python bench/versions.py --variant shipped= --variant bare= \\
        --env bare:FAREBOX_METRICS=off --env bare:FAREBOX_ACCESS_LOG=off --modes nonstream
    .venv/bin/python bench/versions.py --variant now= --variant before=../old/src --db postgres

The older checkout runs against this checkout's installed dependencies: a version whose
requirements differ may not start. Needs wrk and the measuring sticks (--sticks).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from farebox_target import (  # noqa: E402
    create_account,
    database,
    farebox_env,
    pinned,
    serve_argv,
    upstream_argv,
    write_catalog,
)
from load import free_port, wait_port  # noqa: E402
from procstat import tree  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
LEAN = "lean_proxy"


def cpu_ticks(pid: int) -> tuple[int, int]:
    """User and system clock ticks of pid and its live descendants."""
    user = system = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11])
        system += int(fields[12])
    return user, system


def wrk(args: argparse.Namespace, port: int, key: str, mode: str, seconds: int) -> tuple[int, int]:
    """(requests, non-2xx) of one wrk run."""
    env = dict(os.environ, KEY=key, STREAM="1" if mode == "stream" else "0", MODEL="fake-gpt")
    out = subprocess.run(
        [
            *("taskset", "-c", "0", "wrk", "-t1", f"-c{args.conc}", f"-d{seconds}s"),
            *("-s", str(args.sticks / "post.lua"), f"http://127.0.0.1:{port}/v1/chat/completions"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    done = re.search(r"(\d+) requests in", out)
    if done is None:
        raise RuntimeError(f"wrk printed no count: {out[-500:]}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return int(done.group(1)), int(bad.group(1)) if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--variant", action="append", default=[], help="NAME=SRC (SRC empty: here)")
    ap.add_argument("--env", action="append", default=[], help="NAME:KEY=VALUE for one variant")
    ap.add_argument("--modes", default="nonstream,stream")
    ap.add_argument("--conc", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=6, help="measured seconds per cell")
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--sticks", type=Path, default=HERE.parent.parent / "shared" / "bench")
    args = ap.parse_args()
    if not args.variant:
        ap.error("give at least one --variant NAME=SRC")
    farebox = str(Path(sys.executable).parent / "farebox")
    tmp = Path(tempfile.mkdtemp(prefix="farebox-versions-"))
    targets: dict[str, tuple[int, str, subprocess.Popen[bytes]]] = {}
    procs: list[subprocess.Popen[bytes]] = []
    with ExitStack() as stack:  # databases and logs: closed after the processes have stopped
        try:
            results = _start_and_run(args, stack, procs, targets, farebox, tmp)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(30)
    report(args, results, list(targets))
    return 0


Row = tuple[float, float, float, int]  # req/s, user µs/req, system µs/req, non-2xx


def _start_and_run(
    args: argparse.Namespace,
    stack: ExitStack,
    procs: list[subprocess.Popen[bytes]],
    targets: dict[str, tuple[int, str, subprocess.Popen[bytes]]],
    farebox: str,
    tmp: Path,
) -> dict[tuple[str, str], list[Row]]:
    up = free_port()
    upstream = subprocess.Popen(
        pinned(0, upstream_argv(args.sticks, up)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs.append(upstream)
    wait_port(up, upstream)
    port = free_port()
    lean = subprocess.Popen(
        pinned(1, [sys.executable, str(args.sticks / "lean_proxy.py"), str(port)]),
        env=dict(os.environ, UPSTREAM=f"http://127.0.0.1:{up}"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs.append(lean)
    wait_port(port, lean)
    targets[LEAN] = (port, "sk-bench-lean", lean)
    for spec in args.variant:
        name, _, src = spec.partition("=")
        work = tmp / name
        work.mkdir()
        catalog = work / "catalog.json"
        write_catalog(catalog, up)
        url = stack.enter_context(database(args.db, work, args.pg_admin))
        env = farebox_env(url, catalog)
        if src:
            env["PYTHONPATH"] = str(Path(src).resolve())
        for item in args.env:
            owner, _, pair = item.partition(":")
            if owner == name:
                var, _, value = pair.partition("=")
                env[var] = value
        key = create_account(farebox, env, work)["api_key"]
        port = free_port()
        log = stack.enter_context((work / "server.log").open("wb"))
        server = subprocess.Popen(
            pinned(1, serve_argv(farebox, port)),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=work,
        )
        procs.append(server)
        wait_port(port, server)
        targets[name] = (port, key, server)
    return run(args, targets)


def run(
    args: argparse.Namespace, targets: dict[str, tuple[int, str, subprocess.Popen[bytes]]]
) -> dict[tuple[str, str], list[Row]]:
    names = list(targets)
    results: dict[tuple[str, str], list[Row]] = {}
    for mode in args.modes.split(","):
        for port, key, _ in targets.values():
            wrk(args, port, key, mode, 2)  # warm-up
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                port, key, proc = targets[name]
                user0, sys0 = cpu_ticks(proc.pid)
                started = time.monotonic()
                done, bad = wrk(args, port, key, mode, args.duration)
                took = time.monotonic() - started
                user1, sys1 = cpu_ticks(proc.pid)
                per = 1e6 / CLK_TCK / max(done, 1)
                row = (done / took, (user1 - user0) * per, (sys1 - sys0) * per, bad)
                results.setdefault((mode, name), []).append(row)
                print(
                    f"{mode} round {r} {name}: {row[0]:,.0f} req/s, {row[1] + row[2]:.0f} µs/req"
                    + (f", {bad} non-2xx" if bad else ""),
                    file=sys.stderr,
                    flush=True,
                )
    return results


def report(
    args: argparse.Namespace, results: dict[tuple[str, str], list[Row]], names: list[str]
) -> None:
    print(
        f"\n{args.db}, c={args.conc}, {args.rounds} rounds of {args.duration} s; medians "
        "(each round's value in brackets)\n"
    )
    print("| mode | target | req/s | ratio to lean_proxy | CPU µs/req (user + sys) | non-2xx |")
    print("|---|---|---|---|---|---|")
    for mode in args.modes.split(","):
        lean = results[(mode, LEAN)]
        for name in names:
            rows = results[(mode, name)]
            ratios = [row[0] / base[0] for row, base in zip(rows, lean, strict=True)]
            cpu = [row[1] + row[2] for row in rows]
            print(
                f"| {mode} | {name} | {statistics.median(r[0] for r in rows):,.0f} | "
                f"{statistics.median(ratios):.2f} ({', '.join(f'{x:.2f}' for x in ratios)}) | "
                f"{statistics.median(cpu):.0f} ({', '.join(f'{x:.0f}' for x in cpu)}) | "
                f"{sum(r[3] for r in rows)} |"
            )


if __name__ == "__main__":
    sys.exit(main())
