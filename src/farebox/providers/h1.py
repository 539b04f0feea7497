"""A small pooled HTTP/1.1 client for the chat hot path: asyncio protocols and httptools' parser.

aiohttp's client spent ~95 µs of CPU per request here (request objects, header multidicts,
cookie jar, tracing hooks, per-read timers); this client spends ~20 µs on the same POST
(measured in one process against ../shared/bench/fake_upstream.py, 16 concurrent). It does only
what an upstream chat call needs: POST a body, read a status, headers and a body (whole or as it
arrives; chunked, sized or until close; gzip/deflate decoded), keep connections alive per origin,
TLS for https, and the operator's egress proxy (net/egress.py): a CONNECT tunnel for https, the
absolute URL for http. Everything else (multipart uploads, media) stays on aiohttp.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import zlib
from collections import deque
from collections.abc import Mapping
from urllib.parse import urlsplit

import httptools

from farebox.net.egress import EgressProxies, Proxy
from farebox.records import record

IDLE_KEEPALIVE_S = 30.0
MAX_TUNNEL_ANSWER = 16 * 1024  # a proxy's answer to CONNECT, status line and headers
_PAUSE_AT = 1 << 20  # stop reading from the socket while this much is unread


class H1Error(Exception):
    """The connection failed or broke off; `sent_nothing` when the request never reached a server
    that answered it (safe to send again on a fresh connection)."""

    def __init__(self, message: str, sent_nothing: bool = False) -> None:
        super().__init__(message)
        self.sent_nothing = sent_nothing


@record
class Origin:
    scheme: str
    host: str
    port: int

    @staticmethod
    @functools.lru_cache(maxsize=256)  # a provider's few URLs, parsed once
    def of(url: str) -> tuple[Origin, str]:
        """The origin of an http(s) URL and the request target (path and query)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return Origin(parts.scheme, parts.hostname, port), target

    @property
    def host_address(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 literal in brackets

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host_address if self.port == default else f"{self.host_address}:{self.port}"


class H1Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self, pool: H1Pool, origin: Origin) -> None:
        self._pool = pool
        self.origin = origin
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._response: H1Response | None = None
        self.reusable = False
        self.closed = False
        self.idle_since = 0.0
        self.used = False  # has carried a request before (a stale keep-alive may close it)

    # --- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(H1Error(f"unreadable HTTP response: {exc}"))
            self.close()

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self._response
        if response is None:
            return
        if response.headers_done and not response.complete and response.until_close:
            self.on_message_complete()  # a body delimited by the connection closing
            return
        self._fail(
            H1Error(
                f"the connection closed before the response was complete ({exc or 'EOF'})",
                sent_nothing=not response.started and self.used,
            )
        )

    # --- httptools callbacks
    def on_status(self, status: bytes) -> None:
        assert self._response is not None
        self._response.started = True

    def on_header(self, name: bytes, value: bytes) -> None:
        response = self._response
        assert response is not None
        response.started = True
        if response.headers_done:  # after the body of a chunked message: a trailer field
            response.raw_trailers.append((name.lower(), value))
        else:
            response.raw_headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        response = self._response
        assert response is not None
        response.status = self._parser.get_status_code()
        if response.status < 200:  # 1xx: wait for the real response
            response.raw_headers.clear()
            return
        response.headers_complete(self._parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        assert self._response is not None
        try:
            self._response.feed(body)
        except zlib.error as exc:
            self._fail(H1Error(f"undecodable compressed body: {exc}"))
            self.close()
            return
        if self._response.buffered > _PAUSE_AT and self._transport is not None:
            self._transport.pause_reading()

    def on_message_complete(self) -> None:
        response = self._response
        if response is None or response.status < 200:
            return
        self._response = None
        self.reusable = response.keep_alive and not self.closed
        response.finish()

    # --- use
    def send(self, response: H1Response, head: bytes, body: bytes) -> None:
        assert self._transport is not None
        self._response = response
        response.connection = self
        self._transport.write(head + body)

    def resume_reading(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.resume_reading()

    def release(self) -> None:
        """The response was read to its end: back to the pool if the server keeps it open."""
        if self.reusable and not self.closed:
            self.used = True
            self._pool.put_back(self)
        else:
            self.close()

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _fail(self, error: H1Error) -> None:
        response, self._response = self._response, None
        if response is not None:
            response.fail(error)


class H1Response:
    """Status, headers and the body as it arrives."""

    def __init__(self) -> None:
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.raw_trailers: list[tuple[bytes, bytes]] = []  # a chunked body's trailer fields
        self.started = False
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.until_close = False
        self.buffered = 0
        self.connection: H1Connection | None = None
        self._chunks: deque[bytes] = deque()
        self._error: H1Error | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._decoder: zlib._Decompress | None = None

    def header(self, name: str) -> str | None:
        return _field(self.raw_headers, name)

    def trailer(self, name: str) -> str | None:
        """A trailer field, once the body has been read to its end."""
        return _field(self.raw_trailers, name)

    # --- fed by the connection
    def headers_complete(self, keep_alive: bool) -> None:
        self.headers_done = True
        self.keep_alive = keep_alive
        encoding = (self.header("content-encoding") or "").strip().lower()
        if encoding in ("gzip", "deflate"):
            self._decoder = zlib.decompressobj(wbits=47)  # gzip or zlib, by its header
        chunked = "chunked" in (self.header("transfer-encoding") or "").lower()
        self.until_close = not chunked and self.header("content-length") is None
        self._wake()

    def feed(self, data: bytes) -> None:
        if self._decoder is not None:
            data = self._decoder.decompress(data)
        if data:
            self._chunks.append(data)
            self.buffered += len(data)
        self._wake()

    def finish(self) -> None:
        if self._decoder is not None:
            rest = self._decoder.flush()
            if rest:
                self._chunks.append(rest)
        self.complete = True
        self._wake()

    def fail(self, error: H1Error) -> None:
        self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, timeout_s: float | None = None) -> None:
        """Until the connection feeds something; TimeoutError after `timeout_s` of nothing. The
        timer exists only while actually waiting (a read of buffered bytes sets none)."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        if timeout_s is None:
            await waiter
            return
        timer = loop.call_later(timeout_s, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()

    # --- read by the caller
    async def wait_headers(self) -> None:
        while not self.headers_done:
            if self._error is not None:
                raise self._error
            await self._wait()

    async def readany(self, idle_timeout_s: float | None = None) -> bytes:
        """The next body bytes; b"" at the end. The connection goes back to the pool then.
        TimeoutError when nothing arrives for `idle_timeout_s`."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self.complete:
                self._release()
                return b""
            await self._wait(idle_timeout_s)
        data = b"".join(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks.clear()
        if self.buffered > _PAUSE_AT and self.connection is not None:
            self.connection.resume_reading()
        self.buffered = 0
        return data

    def _release(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.release()

    def close(self) -> None:
        """Stop reading: the connection is dropped unless the response had ended."""
        connection, self.connection = self.connection, None
        if connection is not None:
            if self.complete:
                connection.release()
            else:
                connection.close()


def _field(fields: list[tuple[bytes, bytes]], name: str) -> str | None:
    wanted = name.lower().encode("latin-1")
    for key, value in fields:
        if key == wanted:
            return value.decode("latin-1")
    return None


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Tunnel(asyncio.Protocol):
    """Asks an HTTP proxy to CONNECT to the upstream; `answered` resolves once it agrees."""

    def __init__(self, request: bytes) -> None:
        self._request = request
        self._buffer = b""
        self.answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self._request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.answered.done():
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_TUNNEL_ANSWER:
                self._refuse("the egress proxy's answer to CONNECT is too long")
            return
        status_line = self._buffer[: self._buffer.find(b"\r\n")].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].startswith("2"):
            self._refuse(f"the egress proxy refused the tunnel: {status_line[:100]!r}")
        elif end + 4 != len(self._buffer):
            self._refuse("the egress proxy sent data after agreeing to CONNECT")
        else:
            self.answered.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._refuse(f"the egress proxy closed the connection ({exc or 'EOF'})")

    def _refuse(self, message: str) -> None:
        if not self.answered.done():
            self.answered.set_exception(H1Error(message))


class H1Pool:
    """Keep-alive connections per origin, reused most recently used first."""

    def __init__(
        self,
        connect_timeout_s: float,
        ssl_context: ssl.SSLContext | None = None,
        proxies: EgressProxies | None = None,
    ) -> None:
        self._connect_timeout_s = connect_timeout_s
        self._ssl = ssl_context
        self._proxies = proxies
        self._idle: dict[Origin, list[H1Connection]] = {}
        self._closed = False

    def put_back(self, connection: H1Connection) -> None:
        if self._closed:
            connection.close()
            return
        connection.idle_since = asyncio.get_running_loop().time()
        self._idle.setdefault(connection.origin, []).append(connection)

    def _take(self, origin: Origin) -> H1Connection | None:
        idle = self._idle.get(origin)
        now = asyncio.get_running_loop().time()
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < IDLE_KEEPALIVE_S:
                return connection
            connection.close()
        return None

    def _proxy(self, origin: Origin) -> Proxy | None:
        return (
            None if self._proxies is None else self._proxies.for_origin(origin.scheme, origin.host)
        )

    async def _connect(self, origin: Origin) -> H1Connection:
        loop = asyncio.get_running_loop()
        context = None
        if origin.scheme == "https":
            context = self._ssl or ssl.create_default_context()
        proxy = self._proxy(origin)
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                if proxy is not None and context is not None:
                    return await self._tunnel(origin, proxy, context)
                host, port = (
                    (origin.host, origin.port) if proxy is None else (proxy.host, proxy.port)
                )
                _, protocol = await loop.create_connection(
                    lambda: H1Connection(self, origin),
                    host,
                    port,
                    ssl=context,
                    server_hostname=origin.host if context else None,
                )
        except TimeoutError as exc:
            raise H1Error(f"connecting to {origin.host}:{origin.port} timed out") from exc
        except OSError as exc:
            raise H1Error(f"cannot connect to {origin.host}:{origin.port}: {exc}") from exc
        return protocol

    async def _tunnel(self, origin: Origin, proxy: Proxy, context: ssl.SSLContext) -> H1Connection:
        """TLS to the origin inside a CONNECT tunnel through the proxy."""
        loop = asyncio.get_running_loop()
        authority = f"{origin.host_address}:{origin.port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        if proxy.authorization is not None:
            lines.append(f"Proxy-Authorization: {proxy.authorization}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        transport, tunnel = await loop.create_connection(
            lambda: _Tunnel(request), proxy.host, proxy.port
        )
        try:
            await tunnel.answered
            connection = H1Connection(self, origin)
            tls = await loop.start_tls(transport, connection, context, server_hostname=origin.host)
        except BaseException:
            transport.close()
            raise
        if tls is None:  # the transport closed during the handshake
            transport.close()
            raise H1Error(f"the TLS handshake with {origin.host} through the proxy failed")
        connection.connection_made(tls)
        return connection

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> H1Response:
        """Send the request and wait for the response's status and headers."""
        if self._closed:
            raise H1Error("the client is closed")
        origin, target = Origin.of(url)
        extra: list[str] = []
        proxy = self._proxy(origin) if origin.scheme == "http" else None
        if proxy is not None:  # plain http through a proxy: the absolute URL, to the proxy
            target = f"http://{origin.host_header}{target}"
            if proxy.authorization is not None:
                extra.append(f"Proxy-Authorization: {proxy.authorization}")
        lines = [f"POST {target} HTTP/1.1", f"Host: {origin.host_header}", *extra]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        text = "\r\n".join(lines)
        if text.count("\n") != len(lines) - 1 or text.count("\r") != len(lines) - 1:
            raise H1Error("a request header contains a line break")  # no header injection
        head = (text + "\r\n\r\n").encode("latin-1")
        for attempt in range(2):
            connection = self._take(origin) if attempt == 0 else None
            if connection is None:
                connection = await self._connect(origin)
            response = H1Response()
            connection.send(response, head, body)
            try:
                await response.wait_headers()
            except H1Error as exc:
                connection.close()
                if exc.sent_nothing and attempt == 0:
                    continue  # a kept-alive connection the server had closed: once more, fresh
                raise
            except BaseException:
                connection.close()
                raise
            return response
        raise AssertionError("unreachable")

    async def close(self) -> None:
        self._closed = True
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
