"""Server-sent events: splitting an upstream byte stream into whole events, and writing events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

DONE = b"[DONE]"


class SseSplitter:
    """Feeds raw bytes, yields each complete event's raw bytes (with its blank-line terminator)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    @property
    def empty(self) -> bool:
        """No partial event is waiting for more bytes."""
        return not self._buffer

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buffer + data if self._buffer else data
        if b"\r\n" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        events = []
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            events.append(buf[start : end + 2])
            start = end + 2
        self._buffer = buf[start:]
        return events


def event_data(event: bytes) -> bytes | None:
    """The data payload of an event (joined if on several lines), or None for comments."""
    if event.startswith(b"data: ") and event.count(b"\n") == 2:
        return event[6:-2]
    parts = []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            parts.append(line[5:].lstrip(b" "))
    return b"\n".join(parts) if parts else None


def data_event(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


DONE_EVENT = b"data: [DONE]\n\n"


async def rewrite_events(
    stream: AsyncIterator[bytes], rewrite: Callable[[bytes], list[bytes]]
) -> AsyncIterator[bytes]:
    """`stream` with each whole SSE event replaced by what `rewrite` makes of it (nothing, the
    event, or several), passed on chunk by chunk; the stream is closed however this ends."""
    splitter = SseSplitter()
    try:
        async for data in stream:
            out: list[bytes] = []
            for event in splitter.feed(data):
                out.extend(rewrite(event))
            if out:
                yield b"".join(out)
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
