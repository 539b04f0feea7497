"""A response's head goes out with its first body bytes (net/head_first.py): one write where
uvicorn makes two, and never a head held back when no body follows at once."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from farebox.net.connections import GuardedHttpToolsProtocol, uvicorn_options
from farebox.net.head_first import HeadFirst
from farebox.settings import Settings

from support import served


class Recorder:
    """The transport calls HeadFirst makes, in order."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def writelines(self, parts: tuple[bytes, ...]) -> None:
        self.writes.append(b"".join(parts))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"extra:{name}"


async def test_the_head_and_the_first_body_bytes_go_out_in_one_write() -> None:
    recorder = Recorder()
    held = HeadFirst(recorder, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert recorder.writes == []
    held.write(b"body")
    held.write(b"more")
    assert recorder.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"more"]
    await asyncio.sleep(0)  # the pending flush finds nothing held
    assert recorder.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"more"]
    assert held.get_extra_info("peername") == "extra:peername"  # the rest is the transport's


async def test_a_large_first_body_is_not_copied_onto_the_head() -> None:
    recorder = Recorder()
    held = HeadFirst(recorder, asyncio.get_running_loop())  # type: ignore[arg-type]
    big = b"x" * 200_000
    held.write(b"HEAD\r\n\r\n")
    held.write(big)
    assert recorder.writes == [b"HEAD\r\n\r\n" + big]


async def test_a_head_with_no_body_at_once_goes_out_at_the_next_loop_iteration() -> None:
    recorder = Recorder()
    held = HeadFirst(recorder, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    await asyncio.sleep(0)
    assert recorder.writes == [b"HTTP/1.1 204 No Content\r\n\r\n"]
    held.write(b"later")
    assert recorder.writes[-1] == b"later"


async def test_closing_sends_a_held_head_first_and_a_closed_transport_gets_nothing() -> None:
    recorder = Recorder()
    held = HeadFirst(recorder, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 200 OK\r\n\r\n")
    held.close()
    assert recorder.writes == [b"HTTP/1.1 200 OK\r\n\r\n"] and recorder.closed

    gone = Recorder()
    held = HeadFirst(gone, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 200 OK\r\n\r\n")
    gone.closed = True  # the client went away before the flush
    await asyncio.sleep(0)
    assert gone.writes == []


# --- through uvicorn with farebox's protocol


async def _slow_events() -> AsyncIterator[bytes]:
    await asyncio.sleep(2.0)
    yield b"data: late\n\n"


async def _stream(_: Request) -> StreamingResponse:
    return StreamingResponse(_slow_events(), media_type="text/event-stream")


async def _json(_: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    app = Starlette(
        routes=[Route("/stream", _stream), Route("/json", _json, methods=["GET", "HEAD"])]
    )
    options = uvicorn_options(Settings(database_url="sqlite://"))  # what `serve` runs
    assert options["http"].func is GuardedHttpToolsProtocol
    with served(app, **options) as (url, _loop):
        yield url


def test_a_response_arrives_whole_and_keep_alive_still_works(server: str) -> None:
    with httpx.Client(base_url=server) as client:
        for _ in range(3):  # the same connection: each cycle has its own HeadFirst
            r = client.get("/json")
            assert r.status_code == 200 and r.json() == {"ok": True}
        head = client.head("/json")  # a head and no body at all
        assert head.status_code == 200 and head.content == b""


def test_a_stream_gets_its_headers_before_its_first_event(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        first = s.recv(65536)  # the head alone: it did not wait for the event, 2 s later
        assert first.startswith(b"HTTP/1.1 200 OK") and b"late" not in first
        rest = b""
        while b"late" not in rest:
            rest += s.recv(65536)
