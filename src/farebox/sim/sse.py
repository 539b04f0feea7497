"""Server-sent events out of aiohttp: open a stream, send paced events, cut the connection."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiohttp import web

from farebox.sim.gate import Pace

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
}


def data_event(payload: bytes) -> bytes:
    """One `data:` event (no `event:` line) around a JSON payload."""
    return b"data: " + payload + b"\n\n"


async def open_stream(
    request: web.Request, extra_headers: dict[str, str] | None = None
) -> web.StreamResponse:
    """Send 200 headers for an event stream; the body follows with `send_events`."""
    headers = SSE_HEADERS if extra_headers is None else {**SSE_HEADERS, **extra_headers}
    response = web.StreamResponse(status=200, headers=headers)
    await response.prepare(request)
    return response


async def send_events(
    response: web.StreamResponse,
    events: Sequence[bytes],
    tokens: Sequence[int],
    pace: Pace,
) -> None:
    """Write `events` after the time to first token, spaced by the tokens each carries.

    Event k goes out `sum(tokens[:k]) / tokens_per_second` after the first; with no pace set,
    all go out in one write.
    """
    if not events:
        return
    if pace.ttft_s:
        await asyncio.sleep(pace.ttft_s)
    tps = pace.tokens_per_second
    if not tps:
        await response.write(b"".join(events))
        return
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    for event, count in zip(events, tokens, strict=True):
        delay = start + sent / tps - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await response.write(event)
        sent += count


def drop_connection(request: web.Request) -> None:
    """Close the TCP connection after what was written, without ending the HTTP body.

    The transport flushes what it holds, then closes: the client sees a body cut short.
    """
    transport = request.transport
    if transport is not None:
        transport.close()
