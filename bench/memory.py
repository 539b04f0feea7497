"""RSS of `farebox serve` with the shipped catalog, after a warm-up on each catalog encoding.

    python bench/memory.py                 # one process, SQLite: prints a JSON report
    python bench/memory.py --workers 2     # each worker's RSS and PSS (and the parent's)
    python bench/memory.py --max-mb 100    # exit 1 when a serving process is above the bound

Starts `farebox sim` and `farebox serve` on free ports. The shipped catalog is used as it is,
with an operator overlay that points its `openai` and `anthropic` providers at the simulator, so
its models answer: gpt-4o-mini (o200k_base), claude-sonnet-4.5 (cl100k_base) and
text-embedding-3-small (cl100k_base) get non-streamed and streamed requests (`--requests` of
each). RSS is then read from /proc/PID/status of each serving process (VmRSS, and its anonymous
and file-backed parts). tests/e2e/test_memory.py runs this with `--max-mb` its MAX_MB.

With `--workers N`, PSS (proportional set size: each shared page counted once, split between
the processes that map it) and the shared/private split are also read from
/proc/PID/smaps_rollup of the parent and of every worker, after start and after the warm-up,
whose requests then go on a new connection each, so that every worker takes some. The sum of
the processes' PSS is what the whole service costs; the sum of their RSS counts shared pages
once per process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ADMIN = "memory-bench-admin"
CHAT_MODELS = {"gpt-4o-mini": "o200k_base", "claude-sonnet-4.5": "cl100k_base"}
EMBEDDING_MODEL = "openai/text-embedding-3-small"
PROMPT = "Summarise the plot of Hamlet in three sentences, then list its main characters."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, RssFile and RssShmem of `pid`, in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
            out[name] = int(value.split()[0])
    return out


ROLLUP = (
    "Rss",
    "Pss",
    "Pss_Anon",
    "Pss_File",
    "Shared_Clean",
    "Shared_Dirty",
    "Private_Clean",
    "Private_Dirty",
)


def rollup(pid: int) -> dict[str, int]:
    """Rss, Pss and the shared/private split of `pid` from /proc/PID/smaps_rollup, in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, value = line.partition(":")
        if name in ROLLUP:
            out[name] = int(value.split()[0])
    return out


def processes(parent: int) -> dict[str, dict[str, int]]:
    """The parent's and each worker's rollup, keyed "parent" and "worker PID"."""
    found = {"parent": rollup(parent)}
    for pid in sorted(children(parent)):
        found[f"worker {pid}"] = rollup(pid)
    return found


def pss_total_mb(found: dict[str, dict[str, int]]) -> float:
    return round(sum(p["Pss"] for p in found.values()) / 1024, 1)


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry))
    return found


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer in {timeout} s:\n{log.read_text()[-3000:]}")


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "farebox", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def warm_up(url: str, requests: int, spread: bool = False) -> dict[str, int]:
    """`requests` non-streamed and streamed chats per chat model, and embeddings; the count of
    each status code. With `spread`, every request on a new connection (so that each of
    several workers takes some)."""
    codes: dict[str, int] = {}
    limits = httpx.Limits(max_keepalive_connections=0 if spread else 20)
    with httpx.Client(base_url=url, timeout=60, limits=limits) as c:
        created = c.post("/accounts/create").json()
        granted = c.post(
            "/admin/credits",
            json={"credit_id": created["credit_id"], "amount_usd": "100"},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        granted.raise_for_status()
        auth = {"Authorization": f"Bearer {created['api_key']}"}
        for i in range(requests):
            for model in CHAT_MODELS:
                body = {"model": model, "messages": [{"role": "user", "content": f"{PROMPT} {i}"}]}
                r = c.post("/v1/chat/completions", json=body, headers=auth)
                codes[str(r.status_code)] = codes.get(str(r.status_code), 0) + 1
                with c.stream(
                    "POST", "/v1/chat/completions", json={**body, "stream": True}, headers=auth
                ) as s:
                    for _ in s.iter_bytes():
                        pass
                codes[str(s.status_code)] = codes.get(str(s.status_code), 0) + 1
            r = c.post(
                "/v1/embeddings",
                json={"model": EMBEDDING_MODEL, "input": [PROMPT] * 3},
                headers=auth,
            )
            codes[str(r.status_code)] = codes.get(str(r.status_code), 0) + 1
    return codes


def measure(workers: int, requests: int, database_url: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="farebox-memory-") as tmp:
        folder = Path(tmp)
        base = {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}
        sim_port, port = free_port(), free_port()
        sim = spawn(["sim", "--port", str(sim_port)], base, folder / "sim.log")
        serve: subprocess.Popen[bytes] | None = None
        try:
            sim_url = f"http://127.0.0.1:{sim_port}"
            wait_http(sim_url + "/health", sim, folder / "sim.log")
            overlay = {
                "providers": {
                    "openai": {"base_url": f"{sim_url}/v1"},
                    "anthropic": {"base_url": f"{sim_url}/v1"},
                }
            }
            (folder / "catalog.json").write_text(json.dumps(overlay))
            env = {
                **base,
                "FAREBOX_DATABASE_URL": database_url or f"sqlite:///{folder / 'farebox.db'}",
                "FAREBOX_CATALOG": str(folder / "catalog.json"),
                "FAREBOX_ADMIN_TOKEN": ADMIN,
                "FAREBOX_SECRET_KEY": "memory-bench-secret-" + "x" * 24,
                "OPENAI_API_KEY": "sim",
                "ANTHROPIC_API_KEY": "sim",
            }
            args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
            serve = spawn(args, env, folder / "serve.log")
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/healthz", serve, folder / "serve.log")
            started = {"parent": status(serve.pid)}
            started_rollup = processes(serve.pid) if workers > 1 else None
            codes = warm_up(url, requests, spread=workers > 1)
            time.sleep(0.5)
            report: dict[str, Any] = {
                "workers": workers,
                "requests": codes,
                "after_start_kb": started,
                "parent_kb": status(serve.pid),
                "workers_kb": [status(pid) for pid in sorted(children(serve.pid))],
            }
            if started_rollup is not None:
                warmed = processes(serve.pid)
                report["smaps_rollup_kb"] = {"after_start": started_rollup, "after_warm_up": warmed}
                report["pss_total_mb"] = {
                    "after_start": pss_total_mb(started_rollup),
                    "after_warm_up": pss_total_mb(warmed),
                }
                report["rss_total_mb"] = round(sum(p["Rss"] for p in warmed.values()) / 1024, 1)
            serving = report["workers_kb"] if workers > 1 else [report["parent_kb"]]
            report["serving_max_mb"] = round(max(s["VmRSS"] for s in serving) / 1024, 1)
            return report
        finally:
            for process in (serve, sim):
                if process is not None and process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
                    try:
                        process.wait(20)
                    except subprocess.TimeoutExpired:
                        os.killpg(process.pid, signal.SIGKILL)
                        process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--requests", type=int, default=5, help="of each kind, per model")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--max-mb", type=float, help="fail (exit 1) above this RSS")
    args = parser.parse_args(argv)
    report = measure(args.workers, args.requests, args.database_url)
    print(json.dumps(report, indent=2))
    if args.max_mb is not None and report["serving_max_mb"] > args.max_mb:
        print(f"FAIL: {report['serving_max_mb']} MB > {args.max_mb} MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
