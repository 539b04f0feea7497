"""The SSRF guard: which addresses are public (an allow rule), host names checked before any
lookup, DNS answers vetted, and the connection made to the vetted address only."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Mapping

import pytest

from farebox.net.addresses import IPAddress, embedded_ipv4, is_public
from farebox.net.ssrf import FetchPolicy, FetchRefused, check_addresses, fetch, vet_host

# Each named in issue 11 (the first three passed the old guard), then the transition ranges.
NOT_PUBLIC = [
    "127.0.0.1",
    "10.1.2.3",
    "172.20.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "::1",
    "::",
    "fe80::1",
    "fd00::1",
    "ff0e::1",  # global-scope multicast: `is_global` in Python, never a fetch target
    "2001:db8::1",
    "::ffff:127.0.0.1",  # IPv4-mapped: decided by the IPv4
    "::127.0.0.1",  # ::/96, IPv4-compatible
    "::8.8.8.8",  # ... refused whatever it carries
    "2002:7f00:1::",  # 2002::/16, 6to4 gateway 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 gateway 169.254.169.254
    "::ffff:0:7f00:1",  # ::ffff:0:0:0/96, IPv4-translated
    "::ffff:0:808:808",  # ... refused whatever it carries
    "2001::1",  # 2001::/32, Teredo
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "64:ff9b:1::7f00:1",  # 64:ff9b:1::/48, local-use NAT64
    "64:ff9b:1::808:808",
    "64:ff9b::7f00:1",  # NAT64 well-known prefix to 127.0.0.1
    "64:ff9b::a9fe:a9fe",
]
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",  # mapped, to a public IPv4
    "64:ff9b::808:808",  # DNS64's answer for a public IPv4-only host
    "2002:808:808::1",  # 6to4 through a public gateway
]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_embedded_ipv4_is_read_from_mapped_nat64_and_6to4() -> None:
    def inner(text: str) -> str | None:
        found = embedded_ipv4(ipaddress.IPv6Address(text))
        return str(found) if found else None

    assert inner("::ffff:10.0.0.1") == "10.0.0.1"
    assert inner("64:ff9b::c0a8:101") == "192.168.1.1"
    assert inner("2002:c0a8:101:5::1") == "192.168.1.1"
    assert inner("2606:4700::1111") is None


def test_allow_lists() -> None:
    loopback = [ipaddress.ip_address("127.0.0.1")]
    with pytest.raises(FetchRefused):
        check_addresses("localhost", loopback, FetchPolicy())
    check_addresses("localhost", loopback, FetchPolicy(allow_hosts=frozenset({"localhost"})))
    nets = (ipaddress.ip_network("127.0.0.0/8"),)
    check_addresses("anything", loopback, FetchPolicy(allow_networks=nets))
    policy = FetchPolicy.from_env(
        {"FAREBOX_FETCH_ALLOW_HOSTS": "A.internal, b", "FAREBOX_FETCH_ALLOW_NETWORKS": "10.0.0.0/8"}
    )
    assert policy.allow_hosts == {"a.internal", "b"}
    check_addresses("x", [ipaddress.ip_address("10.9.9.9")], policy)


def answering(answers: Mapping[str, list[str]]) -> FetchPolicy:
    """A policy whose DNS answers are `answers` (a name not in it does not resolve)."""

    async def resolve(host: str, port: int) -> list[IPAddress]:
        if host not in answers:
            raise OSError(f"{host} does not resolve")
        return [ipaddress.ip_address(a) for a in answers[host]]

    return FetchPolicy(resolver=resolve)


@pytest.mark.parametrize("address", NOT_PUBLIC)
async def test_dns_answers_that_are_not_public_are_refused(address: str) -> None:
    policy = answering({"images.test": [address]})
    with pytest.raises(FetchRefused) as refused:
        await vet_host("images.test", 443, policy, "image_url")
    assert refused.value.param == "image_url"
    assert address not in refused.value.message  # the customer never learns what it resolved to


async def test_one_private_answer_among_public_ones_refuses_the_host() -> None:
    policy = answering({"mixed.test": ["8.8.8.8", "2606:4700::1", "::127.0.0.1"]})
    with pytest.raises(FetchRefused):
        await vet_host("mixed.test", 80, policy, "image_url")


async def test_public_answers_are_the_addresses_to_connect_to() -> None:
    policy = answering({"public.test": ["8.8.8.8", "64:ff9b::808:808"]})
    found = await vet_host("public.test", 80, policy, "nwc_url")
    assert [str(a) for a in found] == ["8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize(
    "host",
    [
        "a" * 300 + ".example",
        ("abcdefghi." * 26) + "example",
        "a..example",
        ".example",
        "\udcff.example",  # not encodable
    ],
)
async def test_malformed_host_names_are_refused_before_any_lookup(host: str) -> None:
    asked: list[str] = []

    async def resolve(name: str, port: int) -> list[IPAddress]:
        asked.append(name)
        return [ipaddress.ip_address("8.8.8.8")]

    with pytest.raises(FetchRefused, match="not a valid host name"):
        await vet_host(host, 80, FetchPolicy(resolver=resolve), "image_url")
    assert asked == []


async def test_a_host_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(FetchRefused, match="could not be resolved"):
        await vet_host("nowhere.test", 80, answering({}), "image_url")


@pytest.fixture
async def png_server() -> AsyncIterator[tuple[int, list[int]]]:
    """An HTTP server on 127.0.0.1 that counts the connections it accepts."""
    accepted: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        await reader.readuntil(b"\r\n\r\n")
        body = b"\x89PNG fake"
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], accepted
    server.close()
    await server.wait_closed()


async def test_a_name_resolving_to_loopback_is_never_connected_to(
    png_server: tuple[int, list[int]],
) -> None:
    port, accepted = png_server
    policy = answering({"rebind.test": ["127.0.0.1"]})
    with pytest.raises(FetchRefused):
        await fetch(f"http://rebind.test:{port}/x.png", policy)
    assert accepted == []


async def test_the_connection_goes_to_the_vetted_address_without_a_second_lookup(
    png_server: tuple[int, list[int]],
) -> None:
    """`only-here.test` exists in no DNS: the fetch can only reach the server through the
    guard's own answer (the operator allows loopback here)."""
    port, accepted = png_server
    policy = answering({"only-here.test": ["127.0.0.1"]})
    allowed = FetchPolicy(
        allow_networks=(ipaddress.ip_network("127.0.0.0/8"),), resolver=policy.resolver
    )
    fetched = await fetch(f"http://only-here.test:{port}/x.png", allowed)
    assert fetched.data == b"\x89PNG fake" and accepted == [1]


@pytest.mark.parametrize(
    "url",
    [
        "http://[::127.0.0.1]/x.png",
        "http://[2002:7f00:1::]/x.png",
        "http://[::ffff:0:7f00:1]/x.png",
        "http://[::ffff:127.0.0.1]/x.png",
        "http://[2001::1]/x.png",
        "http://[64:ff9b:1::1]/x.png",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
async def test_literal_addresses_in_urls_are_refused(url: str) -> None:
    with pytest.raises(FetchRefused):
        await fetch(url, answering({}))
