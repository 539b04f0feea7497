"""An in-memory UpstreamReply, so local audio flows through the same streaming path."""

from __future__ import annotations

from collections.abc import AsyncIterator

CHUNK = 16 * 1024


class BytesReply:
    """A finished body served in chunks, as an upstream's streamed reply would be."""

    def __init__(self, data: bytes, content_type: str) -> None:
        self._data = data
        self.status = 200
        self.content_type = content_type

    async def read(self) -> bytes:
        return self._data

    async def chunks(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._data), CHUNK):
            yield self._data[start : start + CHUNK]

    async def prime(self) -> None:
        return None

    def close(self) -> None:
        return None
