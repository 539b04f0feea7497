"""HTTP for media upstreams: any method, any body (bytes, multipart, JSON), absolute URLs, and
size-capped downloads of the files upstreams produce."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import orjson

from farebox.providers.base import UpstreamFailure
from farebox.providers.http import AiohttpReply, HttpUpstream

MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024


class MediaReply(AiohttpReply):
    """An AiohttpReply that also keeps the response headers (billing counts, file types)."""

    def __init__(self, response: aiohttp.ClientResponse, provider: str) -> None:
        super().__init__(response, provider)
        self.headers = response.headers


class MediaUpstream(HttpUpstream):
    """HttpUpstream plus GET, multipart bodies, absolute URLs and capped downloads."""

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.config.base_url.rstrip("/") + path

    async def send(
        self,
        method: str,
        path: str,
        *,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    ) -> MediaReply:
        response = await self.request(
            method, self.url(path), data=data, headers=dict(headers or {}), params=params
        )
        return MediaReply(response, self.config.name)

    async def json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Send, then read a JSON object back (an unreadable body is a retryable failure)."""
        reply = await self.send(method, path, **kwargs)
        raw = await reply.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamFailure(
                f"{self.config.name} sent unreadable JSON", provider=self.config.name
            ) from exc
        if not isinstance(body, dict):
            raise UpstreamFailure(
                f"{self.config.name} sent JSON that is not an object", provider=self.config.name
            )
        return body

    async def download(
        self, url: str, headers: Mapping[str, str] | None = None, limit: int = MAX_DOWNLOAD_BYTES
    ) -> tuple[bytes, str]:
        """The bytes and content type of a file the upstream made (refused past `limit`)."""
        reply = await self.send("GET", url, headers=headers)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in reply.chunks():
                size += len(chunk)
                if size > limit:
                    raise UpstreamFailure(
                        f"{self.config.name} sent a file over {limit} bytes",
                        provider=self.config.name,
                    )
                chunks.append(chunk)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamFailure(
                f"{self.config.name} broke off a download",
                provider=self.config.name,
                detail=repr(exc),
            ) from exc
        finally:
            reply.close()
        return b"".join(chunks), reply.content_type.split(";")[0].strip()


def json_body(payload: Any) -> bytes:
    return orjson.dumps(payload)
