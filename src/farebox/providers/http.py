"""Pooled keep-alive HTTP to upstreams (aiohttp: it measures faster than httpx on our hot path)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from farebox.catalog.model import ProviderConfig
from farebox.providers.base import UpstreamFailure

# 401/403 are the operator's credentials failing, not the customer's request: try the next route.
RETRYABLE_STATUS = frozenset(
    {401, 403, 404, 408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}
)


class AiohttpReply:
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
                f"{self._provider} broke off its response: {exc!r}", provider=self._provider
            ) from exc
        finally:
            self._response.release()

    async def prime(self) -> None:
        try:
            first = await self._response.content.readany()
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.close()
            raise UpstreamFailure(
                f"{self._provider} failed before its first byte: {exc!r}", provider=self._provider
            ) from exc
        except asyncio.CancelledError:  # e.g. the router's first-byte timeout
            self.close()
            raise
        if not first:
            self.close()
            raise UpstreamFailure(
                f"{self._provider} closed the stream before any output", provider=self._provider
            )
        self._primed = first

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


class HttpUpstream:
    """One pooled client for one provider."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60, ttl_dns_cache=300)
            timeout = aiohttp.ClientTimeout(
                total=None,
                sock_connect=self.config.connect_timeout_s,
                sock_read=max(self.config.first_byte_timeout_s, self.config.idle_timeout_s),
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=timeout, auto_decompress=True
            )
        return self._session

    async def request(self, method: str, url: str, **kwargs: Any) -> aiohttp.ClientResponse:
        """Send a request; a 2xx response comes back, anything else is an UpstreamFailure."""
        name = self.config.name
        try:
            response = await self._client().request(method, url, **kwargs)
        except TimeoutError as exc:
            raise UpstreamFailure(f"{name} timed out", provider=name) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamFailure(f"{name} could not be reached: {exc}", provider=name) from exc
        if response.status >= 400:
            try:
                body = await response.read()
            except (TimeoutError, aiohttp.ClientError):
                body = b""
            finally:
                response.release()
            raise UpstreamFailure(
                f"{name} answered HTTP {response.status}",
                provider=name,
                status=response.status,
                retryable=response.status in RETRYABLE_STATUS,
                body=body,
            )
        return response

    async def post(self, path: str, payload: bytes, headers: Mapping[str, str]) -> AiohttpReply:
        url = self.config.base_url.rstrip("/") + path
        response = await self.request("POST", url, data=payload, headers=headers)
        return AiohttpReply(response, self.config.name, self.config.idle_timeout_s)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def json_headers(extra: Mapping[str, Any]) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    headers.update({k: str(v) for k, v in extra.items()})
    return headers
