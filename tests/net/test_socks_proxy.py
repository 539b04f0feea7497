"""The vetting SOCKS5 endpoint NWC relay connections go through: it resolves the name itself,
refuses what the SSRF guard refuses, and connects to the vetted address."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator

import pytest

from farebox.net.addresses import IPAddress
from farebox.net.socks import VettingSocksProxy
from farebox.net.ssrf import FetchPolicy
from farebox.nwc.wallet import NostrWallet, WalletError

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


def policy(answers: dict[str, str], allow_loopback: bool = False) -> FetchPolicy:
    async def resolve(host: str, port: int) -> list[IPAddress]:
        if host not in answers:
            raise OSError("no such host")
        return [ipaddress.ip_address(answers[host])]

    return FetchPolicy(allow_networks=LOOPBACK if allow_loopback else (), resolver=resolve)


@pytest.fixture
async def echo() -> AsyncIterator[tuple[int, list[int]]]:
    """An echo server on 127.0.0.1 that counts the connections it accepts."""
    accepted: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], accepted
    server.close()
    await server.wait_closed()


async def socks_connect(
    proxy: VettingSocksProxy, request: bytes
) -> tuple[int, bytes, asyncio.StreamWriter]:
    """SOCKS5 greeting and CONNECT `request` (ATYP + address + port): the reply code, what the
    tunnel echoes back for b"ping" when it opened, and the writer."""
    host, port = (await proxy.address()).split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"\x05\x01\x00")
    assert await reader.readexactly(2) == b"\x05\x00"
    writer.write(b"\x05\x01\x00" + request)
    reply = await reader.readexactly(10)
    echoed = b""
    if reply[1] == 0:
        writer.write(b"ping")
        echoed = await reader.readexactly(4)
    return reply[1], echoed, writer


def domain(name: str, port: int) -> bytes:
    return b"\x03" + bytes([len(name)]) + name.encode() + port.to_bytes(2, "big")


async def test_a_name_resolving_to_loopback_is_refused_and_never_connected(
    echo: tuple[int, list[int]],
) -> None:
    port, accepted = echo
    proxy = VettingSocksProxy(policy({"relay.test": "127.0.0.1"}))
    try:
        code, _, writer = await socks_connect(proxy, domain("relay.test", port))
        writer.close()
        assert code == 2  # "connection not allowed by ruleset"
        code, _, writer = await socks_connect(
            proxy, b"\x01" + bytes([127, 0, 0, 1]) + port.to_bytes(2, "big")
        )
        writer.close()
        assert code == 2
        ipv6 = ipaddress.IPv6Address("::ffff:0:7f00:1").packed
        code, _, writer = await socks_connect(proxy, b"\x04" + ipv6 + port.to_bytes(2, "big"))
        writer.close()
        assert code == 2
    finally:
        await proxy.close()
    assert accepted == []


async def test_an_allowed_name_is_tunnelled_to_the_address_the_proxy_resolved(
    echo: tuple[int, list[int]],
) -> None:
    """`relay.test` is in no DNS: the tunnel can only reach the echo server through the
    proxy's own vetted answer."""
    port, accepted = echo
    proxy = VettingSocksProxy(policy({"relay.test": "127.0.0.1"}, allow_loopback=True))
    try:
        code, echoed, writer = await socks_connect(proxy, domain("relay.test", port))
        writer.close()
    finally:
        await proxy.close()
    assert (code, echoed, accepted) == (0, b"ping", [1])


async def test_nostr_sdk_goes_through_the_proxy_for_every_relay(
    echo: tuple[int, list[int]],
) -> None:
    """A relay on a loopback literal the policy refuses: nostr-sdk never reaches it (without
    the proxy it would connect directly)."""
    port, accepted = echo
    wallet = NostrWallet(VettingSocksProxy(policy({})))
    uri = f"nostr+walletconnect://{'ab' * 32}?relay=ws://127.0.0.1:{port}&secret={'cd' * 32}"
    try:
        with pytest.raises(WalletError):
            await wallet.pay_invoice(uri, "lnbc1", timeout_s=1.0)
    finally:
        await wallet.close()
    assert accepted == []


async def test_only_connect_without_authentication_is_spoken() -> None:
    proxy = VettingSocksProxy(policy({}))
    try:
        host, port = (await proxy.address()).split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"\x05\x01\x02")  # username/password only
        assert await reader.readexactly(2) == b"\x05\xff"
        writer.close()
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"\x05\x01\x00\x05\x02\x00" + domain("relay.test", 80))  # BIND
        assert (await reader.readexactly(12))[2:4] == b"\x05\x07"
        writer.close()
    finally:
        await proxy.close()
