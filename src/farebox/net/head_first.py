"""A response's head and its first body bytes in one system call.

uvicorn writes a response's status line and headers as soon as the app sends
`http.response.start`, and the body with its first `http.response.body`: two writes, two system
calls and, with TCP_NODELAY, two segments, where aiohttp (and so the lean pass-through in
bench/) sends one. On loopback a write costs the sender the receiver's network processing too,
about as much CPU as a small request's own Python work in the gateway. `HeadFirst` stands in for
the transport of one request/response cycle: it holds the cycle's first write (the head) until
the next one and sends both together. Nearly every response sends its first body bytes in the
same step of the event loop; one that does not (a HEAD, a stream that waits for its first event)
gets its head sent alone at the next iteration of the loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

_WAITING, _HOLDING, _PASSING = 0, 1, 2
_JOIN_BELOW = 64 * 1024  # a larger first write goes out with writelines instead of a copy


class HeadFirst:
    __slots__ = ("_head", "_loop", "_state", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._state = _WAITING
        self._head = b""

    def write(self, data: bytes) -> None:
        state = self._state
        if state == _PASSING:
            self._transport.write(data)
        elif state == _WAITING:  # the head: held until the body's first bytes
            self._head = data
            self._state = _HOLDING
            self._loop.call_soon(self.flush)
        else:
            head, self._head = self._head, b""
            self._state = _PASSING
            if len(data) < _JOIN_BELOW:
                self._transport.write(head + data)
            else:
                self._transport.writelines((head, data))

    def flush(self) -> None:
        """Send a held head now (nothing followed it in the same step)."""
        if self._state == _HOLDING:
            head, self._head = self._head, b""
            self._state = _PASSING
            if not self._transport.is_closing():
                self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)  # the rest as the transport has it
