"""The lean HTTP/1.1 client chat calls use (farebox.providers.h1), against raw asyncio servers on
loopback that answer the way real servers do: sized, chunked, compressed, closed-delimited,
keep-alive connections a server drops, TLS, refusals and bodies cut short."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from farebox.catalog.model import ProviderConfig
from farebox.providers.base import UpstreamFailure
from farebox.providers.h1 import H1Error, H1Pool, Origin
from farebox.providers.http import HttpUpstream

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
# serve(handler, ssl_context=None) -> (server, port)
Serve = Callable[..., Awaitable[tuple["Server", int]]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """The request head and body (by Content-Length), or None when the client went away."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


class Server:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        finally:
            writer.close()

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ssl_context)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[Server] = []

    async def start(
        handler: Handler, ssl_context: ssl.SSLContext | None = None
    ) -> tuple[Server, int]:
        server = Server(handler)
        servers.append(server)
        return server, await server.start(ssl_context)

    yield start
    for server in servers:
        await server.stop()


def sized(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
        % (
            len(body),
            extra,
            body,
        )
    )


async def keep_alive_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while (request := await read_request(reader)) is not None:
        writer.write(sized(b'{"echo":' + request[1] + b"}"))
        await writer.drain()


async def read_all(pool: H1Pool, url: str, body: bytes = b"{}") -> tuple[int, bytes]:
    response = await pool.post(url, body, {"Content-Type": "application/json"})
    parts = []
    while data := await response.readany():
        parts.append(data)
    return response.status, b"".join(parts)


async def test_keep_alive_connections_are_reused(serve: Serve) -> None:
    server, port = await serve(keep_alive_echo)
    pool = H1Pool(connect_timeout_s=5)
    for i in range(3):
        status, body = await read_all(pool, f"http://127.0.0.1:{port}/v1/x?n={i}", b"%d" % i)
        assert (status, body) == (200, b'{"echo":%d}' % i)
    assert server.connections == 1
    # Concurrent requests each get a connection; afterwards they are all kept.
    results = await asyncio.gather(
        *(read_all(pool, f"http://127.0.0.1:{port}/", b"%d" % i) for i in range(4))
    )
    assert [body for _, body in results] == [b'{"echo":%d}' % i for i in range(4)]
    assert server.connections == 4
    await pool.close()


async def test_chunked_body_streams_in_pieces(serve: Serve) -> None:
    gate = asyncio.Event()

    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await gate.wait()
        writer.write(b"6\r\n world\r\n0\r\n\r\n")
        await writer.drain()
        await read_request(reader)

    _, port = await serve(chunked)
    pool = H1Pool(connect_timeout_s=5)
    response = await pool.post(f"http://127.0.0.1:{port}/", b"{}", {})
    assert await response.readany() == b"hello"  # before the rest was even sent
    with pytest.raises(TimeoutError):
        await response.readany(idle_timeout_s=0.05)  # the server is holding back
    gate.set()
    assert await response.readany() == b" world"
    assert await response.readany() == b""
    await pool.close()


async def test_gzip_body_is_decoded(serve: Serve) -> None:
    payload = b'{"text":"' + b"compressible " * 500 + b'"}'

    async def gzipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(sized(gzip.compress(payload), b"Content-Encoding: gzip\r\n"))
        await writer.drain()

    _, port = await serve(gzipped)
    pool = H1Pool(connect_timeout_s=5)
    assert await read_all(pool, f"http://127.0.0.1:{port}/") == (200, payload)
    await pool.close()


async def test_body_delimited_by_close_is_read_and_not_reused(serve: Serve) -> None:
    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart one, ")
        await writer.drain()
        writer.write(b"part two")
        await writer.drain()

    server, port = await serve(until_close)
    pool = H1Pool(connect_timeout_s=5)
    for _ in range(2):
        assert await read_all(pool, f"http://127.0.0.1:{port}/") == (200, b"part one, part two")
    assert server.connections == 2
    await pool.close()


async def test_a_kept_connection_the_server_dropped_is_retried_fresh(serve: Serve) -> None:
    served = 0

    async def one_per_connection(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal served
        await read_request(reader)
        served += 1
        writer.write(sized(b"%d" % served))  # says nothing of closing, then does
        await writer.drain()
        await read_request(reader)  # the next request on this connection is dropped unanswered

    server, port = await serve(one_per_connection)
    pool = H1Pool(connect_timeout_s=5)
    assert await read_all(pool, f"http://127.0.0.1:{port}/") == (200, b"1")
    assert await read_all(pool, f"http://127.0.0.1:{port}/") == (200, b"2")
    assert server.connections == 2
    await pool.close()


async def test_a_body_cut_short_is_an_error(serve: Serve) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        await writer.drain()

    _, port = await serve(cut)
    pool = H1Pool(connect_timeout_s=5)
    response = await pool.post(f"http://127.0.0.1:{port}/", b"{}", {})
    assert await response.readany() == b"only this"
    with pytest.raises(H1Error, match="closed before the response was complete"):
        await response.readany()
    await pool.close()


def _self_signed(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp / "cert.pem").write_bytes(cert_pem)
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return server, client


async def test_https_with_the_servers_certificate_checked(serve: Serve, tmp_path: Path) -> None:
    server_ctx, client_ctx = _self_signed(tmp_path)
    _, port = await serve(keep_alive_echo, server_ctx)
    pool = H1Pool(connect_timeout_s=5, ssl_context=client_ctx)
    assert await read_all(pool, f"https://localhost:{port}/", b"7") == (200, b'{"echo":7}')
    await pool.close()
    untrusting = H1Pool(connect_timeout_s=5)  # the system's CAs: this certificate is refused
    with pytest.raises(H1Error, match="cannot connect"):
        await untrusting.post(f"https://localhost:{port}/", b"{}", {})
    await untrusting.close()


def _upstream(port: int) -> HttpUpstream:
    return HttpUpstream(
        ProviderConfig(
            name="up", kind="openai", base_url=f"http://127.0.0.1:{port}/v1", api_key=None
        )
    )


async def test_upstream_refusals_and_unreachable_hosts_are_upstream_failures(serve: Serve) -> None:
    async def busy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader) is not None:
            body = b'{"error":{"message":"slow down"}}'
            writer.write(
                b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            await writer.drain()

    _, port = await serve(busy)
    upstream = _upstream(port)
    with pytest.raises(UpstreamFailure) as refused:
        await upstream.post("/chat/completions", b"{}", {})
    assert (refused.value.status, refused.value.retryable) == (429, True)
    assert b"slow down" in (refused.value.body or b"")
    await upstream.close()

    free = _upstream(1)  # nothing listens on port 1
    with pytest.raises(UpstreamFailure, match="could not be reached"):
        await free.post("/chat/completions", b"{}", {})
    await free.close()


def test_host_header_and_targets() -> None:
    origin, target = Origin.of("https://[::1]:8443/v1/chat/completions?beta=true")
    assert (origin.host_header, target) == ("[::1]:8443", "/v1/chat/completions?beta=true")
    assert Origin.of("http://example.com/")[0].host_header == "example.com"
    assert Origin.of("https://example.com:443")[0:2] == (Origin("https", "example.com", 443), "/")
    with pytest.raises(ValueError):
        Origin.of("ftp://example.com/")


async def test_a_header_with_a_line_break_is_refused(serve: Serve) -> None:
    server, port = await serve(keep_alive_echo)
    pool = H1Pool(connect_timeout_s=5)
    with pytest.raises(H1Error, match="line break"):
        await pool.post(f"http://127.0.0.1:{port}/", b"{}", {"X-Evil": "a\r\nX-Injected: 1"})
    assert server.connections == 0
    await pool.close()


async def test_a_reader_cancelled_mid_body_drops_the_connection(serve: Serve) -> None:
    closed = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await writer.drain()
        await reader.read()  # returns when the client closes its side
        closed.set()

    _, port = await serve(slow)
    upstream = _upstream(port)
    reply = await upstream.post("/chat/completions", b"{}", {})
    reading = asyncio.ensure_future(reply.read())
    await asyncio.sleep(0.05)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    await asyncio.wait_for(closed.wait(), 5)
    await upstream.close()
