"""A lean ASGI response for server-sent events.

Starlette's StreamingResponse runs an anyio task group per response to notice a client leaving;
this one uses a single plain watcher task: when the client disconnects, the watcher cancels the
producer, whose `finally` (settling the bill) runs at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

from starlette.types import Message, Receive, Scope, Send

from farebox.chat.sse import DONE_EVENT


class EventStreamResponse:
    media_type = "text/event-stream"

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        headers: Mapping[str, str],
        status: int = 200,
        *,
        media_type: str | None = "text/event-stream; charset=utf-8",
        last_event: bytes | None = DONE_EVENT,
    ) -> None:
        """`media_type` None: the content type is among `headers`. `last_event` None: the body
        is opaque (sealed bytes relayed as they come), ended only by the producer."""
        self.chunks = chunks
        self.status = status
        self.last_event = last_event
        own = [(b"content-type", media_type.encode("latin-1"))] if media_type else []
        self.raw_headers = [
            *own,
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        state = {"finished": False, "disconnected": False}

        async def watch() -> None:
            while True:
                message: Message = await receive()
                if message["type"] == "http.disconnect":
                    if not state["finished"]:
                        state["disconnected"] = True
                        task.cancel()
                    return

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            await send(
                {"type": "http.response.start", "status": self.status, "headers": self.raw_headers}
            )
            ended = False
            async for chunk in self.chunks:
                if ended:
                    continue  # nothing may follow the end of the body
                # A chunk ending in the [DONE] event is the last: it ends the body in one write.
                ended = self.last_event is not None and chunk.endswith(self.last_event)
                state["finished"] = ended
                await send({"type": "http.response.body", "body": chunk, "more_body": not ended})
            state["finished"] = True
            if not ended:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not state["disconnected"]:
                raise
            task.uncancel()  # the client left: not an error of ours
        finally:
            state["finished"] = True
            watcher.cancel()
            aclose = getattr(self.chunks, "aclose", None)
            if aclose is not None:
                await aclose()  # run the producer's cleanup (its settlement) now
