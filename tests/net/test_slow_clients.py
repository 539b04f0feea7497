"""Slow clients and idle floods against a live gateway, over real sockets on loopback: request
headers and bodies have deadlines, and open connections are capped without starving anyone.

Connection handling does not touch storage, so these run on SQLite only. Every wait is bounded
and every time asserted is a deadline being enforced, never a speed."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from farebox.sim.server import SimServer

from support import Gateway, running_gateway
from support import test_catalog as sim_catalog

DEADLINE_S = 1.0
SLACK_S = 5.0  # the most a deadline may be enforced late on a busy machine (checks run each 0.25 s)
CAP = 16


@pytest.fixture(scope="module")
def quick(sim: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Deadlines of 1 s; a body must then average 1000 bytes/s."""
    db = tmp_path_factory.mktemp("slow") / "farebox.db"
    with running_gateway(
        f"sqlite:///{db}",
        sim_catalog(sim.url),
        header_timeout_s=DEADLINE_S,
        body_timeout_s=DEADLINE_S,
        body_min_rate=1000,
    ) as gw:
        yield gw


@pytest.fixture(scope="module")
def capped(sim: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """At most CAP connections; deadlines long enough not to interfere."""
    db = tmp_path_factory.mktemp("capped") / "farebox.db"
    with running_gateway(
        f"sqlite:///{db}",
        sim_catalog(sim.url),
        header_timeout_s=60,
        body_timeout_s=60,
        max_connections=CAP,
    ) as gw:
        yield gw


def open_socket(gw: Gateway) -> socket.socket:
    port = int(gw.url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def is_closed(sock: socket.socket) -> bool:
    """True once the server has closed `sock` (what it sent before is read and dropped)."""
    sock.setblocking(False)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def trickle_until_closed(
    sock: socket.socket, payload: bytes, every_s: float, limit_s: float
) -> tuple[float, bytes]:
    """Send `payload` a byte every `every_s` until the server closes the connection; returns
    (seconds until it did, what it sent back). Fails the test after `limit_s`."""
    started = time.monotonic()
    received = b""
    sock.settimeout(every_s)
    position = 0
    while time.monotonic() - started < limit_s:
        if position < len(payload):
            try:
                sock.sendall(payload[position : position + 1])
            except OSError:
                return time.monotonic() - started, received
            position += 1
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started, received
        if not data:
            return time.monotonic() - started, received
        received += data
    pytest.fail(f"the server kept a slow client for {limit_s} s")


def read_response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length (it may come in several segments)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_slow_headers_are_cut_off_at_the_deadline(quick: Gateway) -> None:
    headers = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 1000
    with open_socket(quick) as sock:
        elapsed, received = trickle_until_closed(sock, headers, 0.1, DEADLINE_S + SLACK_S)
    assert elapsed >= DEADLINE_S and received == b""


def test_a_connection_that_never_sends_is_closed_at_the_deadline(quick: Gateway) -> None:
    with open_socket(quick) as sock:
        elapsed, received = trickle_until_closed(sock, b"", 0.1, DEADLINE_S + SLACK_S)
    assert elapsed >= DEADLINE_S and received == b""


def test_the_header_deadline_restarts_after_each_response(quick: Gateway) -> None:
    with open_socket(quick) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(DEADLINE_S / 2)  # idle, but under uvicorn's 5 s keep-alive
        slow = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
        elapsed, received = trickle_until_closed(sock, slow, 0.1, DEADLINE_S + SLACK_S)
    assert elapsed >= DEADLINE_S / 2 and received == b""


def test_a_trickling_body_gets_408_in_the_error_envelope(quick: Gateway) -> None:
    head = b"POST /credits/balance HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
    with open_socket(quick) as sock:
        sock.sendall(head)
        elapsed, received = trickle_until_closed(sock, b"{" * 1000, 0.05, DEADLINE_S + SLACK_S)
    assert elapsed >= DEADLINE_S
    status, _, rest = received.partition(b"\r\n")
    assert status == b"HTTP/1.1 408 Request Timeout"
    error = orjson.loads(rest.split(b"\r\n\r\n", 1)[1])["error"]
    assert error["code"] == "request_timeout" and "too slowly" in error["message"]


def test_a_steady_body_may_take_longer_than_the_base_deadline(quick: Gateway) -> None:
    """3000 bytes over about 1.5 s: past the 1 s base, within 1 s + 3000 / 1000 bytes/s."""
    body = b"x" * 3000
    head = b"POST /credits/balance HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    with open_socket(quick) as sock:
        sock.sendall(head)
        started = time.monotonic()
        for i in range(0, len(body), 300):
            time.sleep(0.15)
            sock.sendall(body[i : i + 300])
        reply = read_response(sock)
    assert time.monotonic() - started > DEADLINE_S
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]  # read whole: not JSON, not 408


def test_headers_past_the_size_limit_get_431(quick: Gateway) -> None:
    with open_socket(quick) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n")
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 431"), reply[:200]


def wait_for(predicate: object, limit_s: float = 10.0) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return bool(predicate())  # type: ignore[operator]


def healthz(gw: Gateway) -> int:
    with httpx.Client(base_url=gw.url, timeout=10) as c:
        return c.get("/healthz").status_code


def test_idle_connections_beyond_the_cap_cannot_starve_healthz(capped: Gateway) -> None:
    with contextlib.ExitStack() as stack:
        idle = [stack.enter_context(open_socket(capped)) for _ in range(3 * CAP)]
        assert wait_for(lambda: sum(not is_closed(s) for s in idle) <= CAP)
        for _ in range(3):  # each new client makes room by closing the longest-idle connection
            assert healthz(capped) == 200
        assert sum(not is_closed(s) for s in idle) <= CAP


def test_when_every_connection_is_busy_a_new_one_is_refused_not_queued(capped: Gateway) -> None:
    head = b"POST /credits/balance HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
    with contextlib.ExitStack() as stack:
        busy = []
        for _ in range(CAP):  # each waits for the rest of its body: a request in progress
            sock = stack.enter_context(open_socket(capped))
            sock.sendall(head)
            busy.append(sock)
        time.sleep(0.2)
        with open_socket(capped) as newcomer:
            assert wait_for(lambda: is_closed(newcomer))
        assert not any(is_closed(s) for s in busy)
        for sock in busy:  # the requests complete: their connections count no more
            sock.sendall(b"0123456789")
            assert read_response(sock).startswith(b"HTTP/1.1 ")
    assert wait_for(lambda: healthz(capped) == 200)
