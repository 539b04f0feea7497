"""Fetching a customer's URL (e.g. `image_url`) without reaching the operator's own network.

Every outbound connection to a host a customer named goes through `vet_host`: the host name is
checked (length, labels, IDNA), resolved once, and every address it resolves to must be public
(`addresses.is_public`: globally routable only) unless the operator allows it. The connection
then goes to a vetted address itself, so a second DNS answer cannot swap in another target:
aiohttp gets the vetted answers through `GuardedResolver`, the NWC relay proxy connects to them
(net/socks.py). Redirects are followed by hand, each one checked again. Size and time are capped.

The refusal names the host the customer gave, never the address it resolved to (which would
tell a customer what the operator's internal names resolve to).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from farebox.errors import InvalidRequest
from farebox.net.addresses import IPAddress, IPNetwork, is_public

__all__ = ["FetchPolicy", "FetchRefused", "IPAddress", "fetch", "is_public", "vet_host"]

MAX_HOST_CHARS = 253
MAX_LABEL_CHARS = 63

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
"""host, port -> the addresses it resolves to (raises OSError when it does not resolve)."""


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


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
    resolver: Resolver = field(default=system_resolver, compare=False)

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


def check_addresses(
    host: str, addresses: Iterable[IPAddress], policy: FetchPolicy, param: str = "image_url"
) -> None:
    """Raise FetchRefused if any address is not public and the host is not allowed."""
    if host.lower() in policy.allow_hosts:
        return
    for address in addresses:
        if is_public(address) or any(address in n for n in policy.allow_networks):
            continue
        raise FetchRefused(
            f"The host {_shown(host)} is or resolves to a private, loopback, link-local or "
            "otherwise non-public address, which this gateway does not connect to. "
            "Use a public host.",
            param=param,
        )


def _shown(host: str) -> str:
    return repr(host if len(host) <= 80 else host[:77] + "...")


def checked_host_name(host: str, param: str) -> str:
    """`host` (a name, not an IP literal) as an ASCII name DNS can carry, or FetchRefused."""
    bad = FetchRefused(
        f"The host {_shown(host)} is not a valid host name (at most {MAX_HOST_CHARS} "
        f"characters, labels of 1 to {MAX_LABEL_CHARS}).",
        param=param,
    )
    if len(host) > MAX_HOST_CHARS:
        raise bad
    try:
        ascii_name = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise bad from None
    labels = ascii_name.rstrip(".").split(".")
    if len(ascii_name) > MAX_HOST_CHARS or not all(0 < len(x) <= MAX_LABEL_CHARS for x in labels):
        raise bad
    return ascii_name


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def vet_host(host: str, port: int, policy: FetchPolicy, param: str) -> list[IPAddress]:
    """The addresses to connect to for `host`: resolved once, every one allowed by the policy.

    Raises FetchRefused (a 400 naming `param`) for a malformed or unresolvable host, or one
    with any address that is not public and not allowed by the operator.
    """
    literal = ip_literal(host)
    if literal is not None:
        check_addresses(host, [literal], policy, param)
        return [literal]
    name = checked_host_name(host, param)
    try:
        addresses = await policy.resolver(name, port)
    except (OSError, UnicodeError) as exc:
        raise FetchRefused(f"The host {_shown(host)} could not be resolved.", param=param) from exc
    if not addresses:
        raise FetchRefused(f"The host {_shown(host)} could not be resolved.", param=param)
    check_addresses(host, addresses, policy, param)
    return addresses


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver: vets the host, and hands aiohttp only the vetted addresses."""

    def __init__(self, policy: FetchPolicy, param: str) -> None:
        self.policy = policy
        self.param = param

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await vet_host(host, port, self.policy, self.param)
        return [
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=socket.AF_INET if address.version == 4 else socket.AF_INET6,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Fetched:
    data: bytes
    content_type: str


def _data_url(url: str, policy: FetchPolicy, param: str) -> Fetched:
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise FetchRefused("The data: URL has no comma before its data.", param=param)
    content_type = header.split(";")[0] or "text/plain"
    try:
        if header.endswith(";base64"):
            data = base64.b64decode(payload, validate=True)
        else:
            data = unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        raise FetchRefused("The data: URL's base64 data is not valid.", param=param) from exc
    if len(data) > policy.max_bytes:
        raise FetchRefused(f"The data: URL holds more than {policy.max_bytes} bytes.", param=param)
    return Fetched(data, content_type)


async def fetch(url: str, policy: FetchPolicy, param: str = "image_url") -> Fetched:
    """GET `url` within the policy (data: URLs are decoded in place). Raises FetchRefused."""
    if url.startswith("data:"):
        return _data_url(url, policy, param)
    _check_url(url, policy, param)
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(policy, param), use_dns_cache=False)
    timeout = aiohttp.ClientTimeout(total=policy.timeout_s)
    try:
        # trust_env stays off: never through the egress proxy, which would resolve the host again
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, trust_env=False
        ) as session:
            return await _follow(session, url, policy, param)
    except FetchRefused:
        raise
    except TimeoutError as exc:
        raise FetchRefused(
            f"Fetching the {param} took longer than {policy.timeout_s:g} s.", param=param
        ) from exc
    except (
        aiohttp.ClientError,
        ValueError,
    ) as exc:  # yarl/aiohttp refuse some URLs with ValueError
        raise FetchRefused(
            f"Fetching the {param} failed ({type(exc).__name__}).", param=param
        ) from exc


def _check_url(url: str, policy: FetchPolicy, param: str) -> None:
    """A URL we may try: an allowed scheme, a well-formed host, and no literal private address
    (names are vetted when they resolve)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise FetchRefused(f"The {param} is not a valid URL.", param=param) from exc
    if parts.scheme not in policy.schemes or not host:
        raise FetchRefused(f"{param} must be an http(s):// or data: URL.", param=param)
    literal = ip_literal(host)
    if literal is None:
        checked_host_name(host, param)
    else:
        check_addresses(host, [literal], policy, param)


async def _follow(
    session: aiohttp.ClientSession, url: str, policy: FetchPolicy, param: str
) -> Fetched:
    for _ in range(policy.max_redirects + 1):
        _check_url(url, policy, param)
        async with session.get(url, allow_redirects=False) as response:
            if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                url = urljoin(url, response.headers["Location"])
                continue
            if response.status != 200:
                raise FetchRefused(
                    f"Fetching the {param} answered HTTP {response.status}.", param=param
                )
            declared = response.content_length
            too_large = FetchRefused(
                f"The {param} is larger than {policy.max_bytes} bytes.", param=param
            )
            if declared is not None and declared > policy.max_bytes:
                raise too_large
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > policy.max_bytes:
                    raise too_large
                chunks.append(chunk)
            content_type = response.headers.get("Content-Type", "application/octet-stream")
            return Fetched(b"".join(chunks), content_type.split(";")[0].strip())
    raise FetchRefused(
        f"The {param} redirected more than {policy.max_redirects} times.", param=param
    )
