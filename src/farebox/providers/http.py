"""Pooled keep-alive HTTP to upstreams.

Chat calls (`HttpUpstream.post`) go through farebox.providers.h1, a lean HTTP/1.1 client (the hot
path); everything else (multipart uploads, media downloads) through aiohttp. Both honour the
operator's HTTPS_PROXY, HTTP_PROXY and NO_PROXY (net/egress.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from farebox.catalog.model import ProviderConfig
from farebox.net.egress import EgressProxies
from farebox.observe.context import request_id_header
from farebox.providers.base import UpstreamFailure
from farebox.providers.h1 import H1Error, H1Pool, H1Response

USER_AGENT = "farebox"

# 401/403 are the operator's credentials failing, not the customer's request: try the next route.
RETRYABLE_STATUS = frozenset(
    {401, 403, 404, 408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}
)


class PrimedReply:
    """What both clients' replies share: reading the first chunk early (`prime`), so a failure
    before any output can still fall back to the next route."""

    _provider: str
    _primed: bytes | None = None

    async def _first(self) -> bytes:
        """The first body bytes (b"" if none); raises UpstreamFailure with the reason."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    async def prime(self) -> None:
        try:
            first = await self._first()
        except UpstreamFailure as failure:
            self.close()
            raise UpstreamFailure(
                f"{self._provider} failed before its first byte: {failure.message}",
                provider=self._provider,
                detail=failure.detail,
            ) from failure
        except asyncio.CancelledError:  # e.g. the router's first-byte timeout
            self.close()
            raise
        if not first:
            self.close()
            raise UpstreamFailure(
                f"{self._provider} closed the stream before any output", provider=self._provider
            )
        self._primed = first


class AiohttpReply(PrimedReply):
    """A 2xx upstream response, read whole or streamed chunk by chunk."""

    def __init__(
        self, response: aiohttp.ClientResponse, provider: str, idle_timeout_s: float | None = None
    ) -> None:
        self._response = response
        self._provider = provider
        self._idle_timeout_s = idle_timeout_s
        self.status = response.status
        self.content_type = response.headers.get("Content-Type", "application/json")
        self._primed: bytes | None = None

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamFailure(
                f"{self._provider} broke off its response",
                provider=self._provider,
                detail=repr(exc),
            ) from exc
        finally:
            self._response.release()

    async def _first(self) -> bytes:
        try:
            return await self._response.content.readany()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamFailure(
                f"{self._provider} broke off its response",
                provider=self._provider,
                detail=repr(exc),
            ) from exc

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._primed is not None:
            first, self._primed = self._primed, None
            yield first
        content = self._response.content
        idle = self._idle_timeout_s
        while True:
            if idle is None:
                data = await content.readany()
            else:
                try:
                    async with asyncio.timeout(idle):
                        data = await content.readany()
                except TimeoutError as exc:
                    raise UpstreamFailure(
                        f"{self._provider} sent nothing for {idle:g} s mid-stream",
                        provider=self._provider,
                    ) from exc
            if not data:
                return
            yield data

    def close(self) -> None:
        self._response.close()


class H1Reply(PrimedReply):
    """A response from the lean client, read whole or streamed chunk by chunk."""

    def __init__(
        self,
        response: H1Response,
        provider: str,
        idle_timeout_s: float | None,
        read_timeout_s: float | None,
    ) -> None:
        self._response = response
        self._provider = provider
        self._idle_timeout_s = idle_timeout_s
        self._read_timeout_s = read_timeout_s
        self.status = response.status
        self.content_type = response.header("content-type") or "application/json"
        self._primed: bytes | None = None

    async def _next(self, timeout_s: float | None) -> bytes:
        try:
            return await self._response.readany(timeout_s)
        except TimeoutError as exc:
            self.close()
            raise UpstreamFailure(
                f"{self._provider} sent nothing for {timeout_s:g} s", provider=self._provider
            ) from exc
        except H1Error as exc:
            self.close()
            raise UpstreamFailure(
                f"{self._provider} broke off its response", provider=self._provider, detail=str(exc)
            ) from exc
        except asyncio.CancelledError:  # the customer left, or a deadline: drop the connection
            self.close()
            raise

    async def read(self) -> bytes:
        parts = []
        while data := await self._next(self._read_timeout_s):
            parts.append(data)
        return b"".join(parts)

    async def _first(self) -> bytes:
        return await self._next(self._read_timeout_s)

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._primed is not None:
            first, self._primed = self._primed, None
            yield first
        while data := await self._next(self._idle_timeout_s):
            yield data

    def close(self) -> None:
        self._response.close()


class HttpUpstream:
    """One pooled client for one provider."""

    def __init__(self, config: ProviderConfig, proxies: EgressProxies | None = None) -> None:
        """`proxies`: the egress proxies (by default, from the environment now)."""
        self.config = config
        self._proxies = proxies if proxies is not None else EgressProxies.from_environ()
        self._session: aiohttp.ClientSession | None = None
        self._h1: H1Pool | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60, ttl_dns_cache=300)
            timeout = aiohttp.ClientTimeout(
                total=None,
                sock_connect=self.config.connect_timeout_s,
                sock_read=max(self.config.first_byte_timeout_s, self.config.idle_timeout_s),
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=timeout, auto_decompress=True, trust_env=True
            )
        return self._session

    async def request(self, method: str, url: str, **kwargs: Any) -> aiohttp.ClientResponse:
        """Send a request; a 2xx response comes back, anything else is an UpstreamFailure."""
        name = self.config.name
        traced = request_id_header()  # the customer's request id, for the provider's logs
        if traced:
            kwargs["headers"] = {**traced, **(kwargs.get("headers") or {})}
        try:
            response = await self._client().request(method, url, **kwargs)
        except TimeoutError as exc:
            raise UpstreamFailure(f"{name} timed out", provider=name) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamFailure(
                f"{name} could not be reached", provider=name, detail=repr(exc)
            ) from exc
        if response.status >= 400:
            try:
                body = await response.read()
            except (TimeoutError, aiohttp.ClientError):
                body = b""
            finally:
                response.release()
            raise status_failure(name, response.status, body)
        return response

    async def post(self, path: str, payload: bytes, headers: Mapping[str, str]) -> H1Reply:
        """POST a chat request; a 2xx response comes back, anything else is an UpstreamFailure."""
        name = self.config.name
        url = self.config.base_url.rstrip("/") + path
        if self._h1 is None:
            self._h1 = H1Pool(self.config.connect_timeout_s, proxies=self._proxies)
        try:
            sent = {"User-Agent": USER_AGENT, **request_id_header(), **headers}
            response = await self._h1.post(url, payload, sent)
        except H1Error as exc:
            raise UpstreamFailure(
                f"{name} could not be reached", provider=name, detail=str(exc)
            ) from exc
        read_timeout = max(self.config.first_byte_timeout_s, self.config.idle_timeout_s)
        reply = H1Reply(response, name, self.config.idle_timeout_s, read_timeout)
        if response.status >= 400:
            try:
                body = await reply.read()
            except UpstreamFailure:
                body = b""
            raise status_failure(name, response.status, body)
        return reply

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._h1 is not None:
            await self._h1.close()


def status_failure(provider: str, status: int, body: bytes) -> UpstreamFailure:
    return UpstreamFailure(
        f"{provider} answered HTTP {status}",
        provider=provider,
        status=status,
        retryable=status in RETRYABLE_STATUS,
        body=body,
    )


def json_headers(extra: Mapping[str, Any]) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    headers.update({k: str(v) for k, v in extra.items()})
    return headers
