"""CPU per request of uvicorn's httptools protocol against farebox's guarded one
(net/connections.py), fed in-process with a fake transport: no sockets, no app work, so the
difference is what the guard adds to every request.

    .venv/bin/python bench/protocol_cost.py [--requests 20000] [--runs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import time
from typing import Any

import uvloop
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from farebox.net.connections import ConnectionLimits, GuardedHttpToolsProtocol

REQUEST = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"


async def app(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


class FakeTransport:
    def __init__(self) -> None:
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def per_request_us(factory: Any, requests: int) -> float:
    config = Config(app, lifespan="off", log_level="warning")
    config.load()
    protocol = factory(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(FakeTransport())
    started = time.process_time()
    for _ in range(requests):
        protocol.data_received(REQUEST)
        await asyncio.sleep(0)  # the request's task runs and answers
        await asyncio.sleep(0)
    return (time.process_time() - started) / requests * 1e6


async def main(requests: int, runs: int) -> None:
    guarded = functools.partial(GuardedHttpToolsProtocol, limits=ConnectionLimits())
    results: dict[str, list[float]] = {"uvicorn": [], "guarded": []}
    for _ in range(runs):  # interleaved, so drift hits both alike
        results["uvicorn"].append(await per_request_us(HttpToolsProtocol, requests))
        results["guarded"].append(await per_request_us(guarded, requests))
    for name, values in results.items():
        print(f"{name:8s} median {statistics.median(values):.2f} µs/request over {runs} runs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    uvloop.run(main(args.requests, args.runs))
