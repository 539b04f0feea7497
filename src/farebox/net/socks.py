"""A SOCKS5 endpoint on loopback that connects only where the SSRF guard allows.

Libraries that open their own sockets (nostr-sdk, for NWC relays) are told to use it as their
proxy. nostr-sdk sends the relay's host name (SOCKS5 "domain" requests, like socks5h), so the
name is resolved here, once, vetted by `vet_host` with the operator's fetch policy, and the
connection goes to a vetted address: no second lookup anywhere can swap in another target.

Only CONNECT without authentication (RFC 1928); handshakes are bounded in time and size, and
the number of open tunnels is capped. It listens on 127.0.0.1 on a port of the OS's choosing,
started on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket

from farebox.net.ssrf import FetchPolicy, FetchRefused, vet_host

log = logging.getLogger("farebox.net")

_VERSION = 5
_CONNECT = 1
_IPV4, _DOMAIN, _IPV6 = 1, 3, 4
_OK, _NOT_ALLOWED, _REFUSED = 0, 2, 5
_CMD_UNSUPPORTED, _ATYP_UNSUPPORTED = 7, 8


class VettingSocksProxy:
    def __init__(
        self,
        policy: FetchPolicy,
        *,
        param: str = "nwc_url",
        handshake_timeout_s: float = 10.0,
        connect_timeout_s: float = 10.0,
        max_tunnels: int = 64,
    ) -> None:
        self.policy = policy
        self.param = param
        self.handshake_timeout_s = handshake_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_tunnels = max_tunnels
        self._server: asyncio.Server | None = None
        self._starting = asyncio.Lock()
        self._tunnels: set[asyncio.Task[None]] = set()

    async def address(self) -> str:
        """`127.0.0.1:<port>`, starting the listener on first use."""
        async with self._starting:
            if self._server is None:
                self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._tunnels):
            task.cancel()
        for task in list(self._tunnels):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if server is not None:
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._tunnels) >= self.max_tunnels:
            writer.close()
            return
        self._tunnels.add(task)
        try:
            await self._tunnel(reader, writer)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self._tunnels.discard(task)
            writer.close()

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(self.handshake_timeout_s):
            target = await self._handshake(reader, writer)
        if target is None:
            return
        host, port = target
        try:
            addresses = await vet_host(host, port, self.policy, self.param)
        except FetchRefused as refused:
            log.warning("refused a proxied connection: %s", refused.message)
            await _reply(writer, _NOT_ALLOWED)
            return
        upstream = await self._connect(addresses, port)
        if upstream is None:
            await _reply(writer, _REFUSED)
            return
        up_reader, up_writer = upstream
        await _reply(writer, _OK)
        try:
            await _pipe_both(reader, writer, up_reader, up_writer)
        finally:
            up_writer.close()

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[str, int] | None:
        version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        if version != _VERSION or 0 not in methods:
            writer.write(bytes([_VERSION, 0xFF]))  # no acceptable method
            await writer.drain()
            return None
        writer.write(bytes([_VERSION, 0]))
        version, command, _reserved, kind = await reader.readexactly(4)
        if kind == _IPV4:
            host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
        elif kind == _IPV6:
            host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        elif kind == _DOMAIN:
            (length,) = await reader.readexactly(1)
            host = (await reader.readexactly(length)).decode("ascii", "replace")
        else:
            await _reply(writer, _ATYP_UNSUPPORTED)
            return None
        port = int.from_bytes(await reader.readexactly(2), "big")
        if version != _VERSION or command != _CONNECT:
            await _reply(writer, _CMD_UNSUPPORTED)
            return None
        return host, port

    async def _connect(
        self, addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address], port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A connection to the first vetted address that answers (never a name: no lookup)."""
        for address in addresses:
            try:
                async with asyncio.timeout(self.connect_timeout_s):
                    return await asyncio.open_connection(
                        str(address),
                        port,
                        family=socket.AF_INET if address.version == 4 else socket.AF_INET6,
                        flags=socket.AI_NUMERICHOST,
                    )
            except (OSError, TimeoutError):
                continue
        return None


async def _reply(writer: asyncio.StreamWriter, code: int) -> None:
    writer.write(bytes([_VERSION, code, 0, _IPV4, 0, 0, 0, 0, 0, 0]))
    await writer.drain()


async def _pipe_both(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(64 * 1024):
                sink.write(data)
                await sink.drain()
        finally:
            if sink.can_write_eof():
                with contextlib.suppress(OSError):
                    sink.write_eof()

    tasks = [
        asyncio.ensure_future(pipe(reader, up_writer)),
        asyncio.ensure_future(pipe(up_reader, writer)),
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
