"""CPU per upstream POST: farebox's chat client (providers/h1.py) beside aiohttp's, same process.

Starts ../shared/bench/fake_upstream.py pinned to core 0, then from core 1 sends the same small
chat request with each client, 16 at a time, and prints CPU µs per request (this process's own
CPU time) and requests per second.

    python bench/client_post.py [--requests 6000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import uvloop

from farebox.providers.h1 import H1Pool

STICKS = Path(__file__).resolve().parents[2] / "shared" / "bench"
BODY = (
    b'{"model":"fake-gpt","messages":[{"role":"user","content":"Say hello in twenty tokens'
    b' please."}],"max_tokens":32}'
)
HEADERS = {"Content-Type": "application/json"}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(post: Callable[[], Awaitable[bytes]], n: int, c: int) -> tuple[float, float]:
    async def worker(count: int) -> None:
        for _ in range(count):
            assert await post()

    await worker(50)  # warm the pool
    cpu0, wall0 = _cpu(), time.perf_counter()
    await asyncio.gather(*(worker(n // c) for _ in range(c)))
    return (_cpu() - cpu0) / n * 1e6, n / (time.perf_counter() - wall0)


async def _aiohttp(url: str, n: int, c: int) -> tuple[float, float]:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=timeout
    ) as session:

        async def post() -> bytes:
            async with session.post(url, data=BODY, headers=HEADERS) as response:
                return await response.read()

        return await _measure(post, n, c)


async def _h1(url: str, n: int, c: int) -> tuple[float, float]:
    pool = H1Pool(connect_timeout_s=10)

    async def post() -> bytes:
        response = await pool.post(url, BODY, HEADERS)
        parts = []
        while data := await response.readany():
            parts.append(data)
        return b"".join(parts)

    try:
        return await _measure(post, n, c)
    finally:
        await pool.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=6000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--sticks", type=Path, default=STICKS)
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    upstream = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, str(args.sticks / "fake_upstream.py"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        os.sched_setaffinity(0, {1})
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        print("| client | CPU µs/request | req/s |")
        print("|---|---:|---:|")
        for name, run in (("aiohttp", _aiohttp), ("farebox h1", _h1)) * 2:
            cpu, rps = uvloop.run(run(url, args.requests, args.concurrency))
            print(f"| {name} | {cpu:.0f} | {rps:,.0f} |", flush=True)
    finally:
        upstream.terminate()
        upstream.wait(5)


if __name__ == "__main__":
    main()
