"""The operator's egress proxy, for calls to the upstreams the operator configured.

`HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (or their lowercase forms, which win) are read with
urllib's own rules (`getproxies_environment`, `proxy_bypass_environment`): the same rules aiohttp
applies to a session made with `trust_env=True`. So the hot-path client (providers/h1.py) and
every aiohttp session to a configured upstream (providers, search, data, payments, mints,
enclaves, S3) agree on which host goes through which proxy. https upstreams are reached through
a CONNECT tunnel (TLS end to end, the proxy sees only the host and port); http ones by sending
the absolute URL to the proxy. A user and password in the proxy's URL become a
`Proxy-Authorization: Basic` header, never logged.

URLs a customer supplies never take this path: net/ssrf.py's sessions leave `trust_env` off and
connect to the address the guard vetted (a proxy would resolve the name again, out of its sight).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit
from urllib.request import (  # type: ignore[attr-defined]  # not in typeshed
    getproxies_environment,
    proxy_bypass_environment,
)

__all__ = ["EgressProxies", "Proxy"]


@dataclass(frozen=True, slots=True)
class Proxy:
    """An HTTP proxy to reach an upstream through."""

    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)
    """The `Proxy-Authorization` value, from the URL's user and password (kept out of repr)."""

    @staticmethod
    def parse(url: str) -> Proxy:
        """`http://[user:password@]host[:port]` (a bare `host:port` means http). Raises
        ValueError for anything else, naming the proxy's host but never its password."""
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http":
            raise ValueError(
                f"{parts.hostname or '?'}: only http:// proxies are supported "
                "(https upstreams still get TLS end to end, through CONNECT)"
            )
        if not parts.hostname:
            raise ValueError("an egress proxy URL has no host")
        port = parts.port or 80  # ValueError for a port that is not a number in range
        authorization = None
        if parts.username is not None:
            user = unquote(parts.username)
            password = unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            authorization = f"Basic {token}"
        return Proxy(parts.hostname, port, authorization)

    @property
    def address(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host


class EgressProxies:
    """Which proxy (if any) reaches a given upstream origin."""

    def __init__(self, proxies: Mapping[str, str]) -> None:
        """`proxies` as urllib's `getproxies_environment()` returns it: scheme -> proxy URL,
        and "no" -> the NO_PROXY list."""
        self._raw = dict(proxies)
        self._by_scheme = {
            scheme: Proxy.parse(url)
            for scheme, url in self._raw.items()
            if scheme in ("http", "https") and url
        }
        self._chosen: dict[tuple[str, str], Proxy | None] = {}

    @classmethod
    def from_environ(cls) -> EgressProxies:
        """From the process's environment, read now."""
        return cls(getproxies_environment())

    @property
    def active(self) -> bool:
        return bool(self._by_scheme)

    def for_origin(self, scheme: str, host: str) -> Proxy | None:
        """The proxy for an upstream at `scheme://host`, or None to connect directly."""
        key = (scheme, host)
        if key not in self._chosen:  # a provider's one or two origins: decided once each
            proxy = self._by_scheme.get(scheme)
            if proxy is not None and proxy_bypass_environment(host, self._raw):
                proxy = None
            self._chosen[key] = proxy
        return self._chosen[key]

    def describe(self) -> str:
        """For the startup log: which proxies, never their credentials."""
        if not self._by_scheme:
            return "direct"
        shown = [f"{s}={p.address}:{p.port}" for s, p in sorted(self._by_scheme.items())]
        if self._raw.get("no"):
            shown.append(f"no_proxy={self._raw['no']}")
        return ", ".join(shown)
