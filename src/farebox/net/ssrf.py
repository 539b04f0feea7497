"""Fetching a customer's URL (e.g. `image_url`) without reaching the operator's own network.

Every address a host resolves to must be public unless the operator allows it: loopback,
private, link-local (cloud metadata), shared, multicast, reserved and unspecified ranges are
refused, IPv4-mapped IPv6 included. The connection goes to the vetted address itself, so a
second DNS answer cannot swap in another target; redirects are followed by hand, each one
checked again. Size and time are capped.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from farebox.errors import InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_BLOCKED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "64:ff9b::/96",
        "100::/64",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)


class FetchRefused(InvalidRequest):
    """A URL we will not fetch, or could not: a clear 400 for the customer."""

    code = "url_refused"


@dataclass(frozen=True)
class FetchPolicy:
    """What a guarded fetch may reach, how much it may read and for how long."""

    allow_hosts: frozenset[str] = frozenset()
    """Hosts (names or IP literals) allowed even though they resolve to private addresses."""
    allow_networks: tuple[IPNetwork, ...] = ()
    max_bytes: int = 20 * 1024 * 1024
    timeout_s: float = 15.0
    max_redirects: int = 3
    schemes: frozenset[str] = field(default_factory=lambda: frozenset({"http", "https"}))

    @classmethod
    def from_env(cls, env: Any) -> FetchPolicy:
        """FAREBOX_FETCH_ALLOW_HOSTS="a.internal,127.0.0.1" and FAREBOX_FETCH_ALLOW_NETWORKS."""
        hosts = _split(env.get("FAREBOX_FETCH_ALLOW_HOSTS", ""))
        nets = tuple(
            ipaddress.ip_network(n, strict=False)
            for n in _split(env.get("FAREBOX_FETCH_ALLOW_NETWORKS", ""))
        )
        max_bytes = int(env.get("FAREBOX_FETCH_MAX_BYTES") or cls.max_bytes)
        return cls(frozenset(h.lower() for h in hosts), nets, max_bytes=max_bytes)


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    return not any(address in net for net in _BLOCKED if net.version == address.version)


def check_addresses(host: str, addresses: Iterable[IPAddress], policy: FetchPolicy) -> None:
    """Raise FetchRefused if any address is not public and the host is not allowed."""
    if host.lower() in policy.allow_hosts:
        return
    for address in addresses:
        if is_public(address) or any(address in n for n in policy.allow_networks):
            continue
        raise FetchRefused(
            f"The URL's host {host!r} resolves to {address}, a private, loopback or link-local "
            "address, which this gateway does not fetch. Use a public URL or a data: URL.",
            param="image_url",
        )


class _GuardedResolver(AbstractResolver):
    """Resolves, then refuses the whole host if any answer is not allowed."""

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise FetchRefused(
                f"The host {host!r} could not be resolved.", param="image_url"
            ) from exc
        hosts = [str(info[4][0]) for info in infos]
        addresses = [ipaddress.ip_address(h.split("%")[0]) for h in hosts]
        check_addresses(host, addresses, self.policy)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=info[0],
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for info, address in zip(infos, hosts, strict=True)
        ]

    async def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Fetched:
    data: bytes
    content_type: str


def _data_url(url: str, policy: FetchPolicy) -> Fetched:
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise FetchRefused("The data: URL has no comma before its data.", param="image_url")
    content_type = header.split(";")[0] or "text/plain"
    try:
        if header.endswith(";base64"):
            data = base64.b64decode(payload, validate=True)
        else:
            data = unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        raise FetchRefused("The data: URL's base64 data is not valid.", param="image_url") from exc
    if len(data) > policy.max_bytes:
        raise FetchRefused(
            f"The data: URL holds more than {policy.max_bytes} bytes.", param="image_url"
        )
    return Fetched(data, content_type)


async def fetch(url: str, policy: FetchPolicy) -> Fetched:
    """GET `url` within the policy (data: URLs are decoded in place). Raises FetchRefused."""
    if url.startswith("data:"):
        return _data_url(url, policy)
    connector = aiohttp.TCPConnector(resolver=_GuardedResolver(policy), use_dns_cache=False)
    timeout = aiohttp.ClientTimeout(total=policy.timeout_s)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            return await _follow(session, url, policy)
    except FetchRefused:
        raise
    except TimeoutError as exc:
        raise FetchRefused(
            f"Fetching {url} took longer than {policy.timeout_s:g} s.", param="image_url"
        ) from exc
    except aiohttp.ClientError as exc:
        raise FetchRefused(f"Fetching {url} failed: {exc}", param="image_url") from exc


def _check_url(url: str, policy: FetchPolicy) -> str:
    parts = urlsplit(url)
    if parts.scheme not in policy.schemes or not parts.hostname:
        raise FetchRefused("image_url must be an http(s):// or data: URL.", param="image_url")
    host = parts.hostname
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return url  # a name: checked when it resolves
    check_addresses(host, [literal], policy)
    return url


async def _follow(session: aiohttp.ClientSession, url: str, policy: FetchPolicy) -> Fetched:
    for _ in range(policy.max_redirects + 1):
        _check_url(url, policy)
        async with session.get(url, allow_redirects=False) as response:
            if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                url = urljoin(url, response.headers["Location"])
                continue
            if response.status != 200:
                raise FetchRefused(
                    f"Fetching {url} answered HTTP {response.status}.", param="image_url"
                )
            declared = response.content_length
            if declared is not None and declared > policy.max_bytes:
                raise FetchRefused(
                    f"{url} is larger than {policy.max_bytes} bytes.", param="image_url"
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > policy.max_bytes:
                    raise FetchRefused(
                        f"{url} is larger than {policy.max_bytes} bytes.", param="image_url"
                    )
                chunks.append(chunk)
            content_type = response.headers.get("Content-Type", "application/octet-stream")
            return Fetched(b"".join(chunks), content_type.split(";")[0].strip())
    raise FetchRefused(
        f"{url} redirected more than {policy.max_redirects} times.", param="image_url"
    )
