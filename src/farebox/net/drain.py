"""Stopping without dropping anyone: what `farebox serve` does on SIGTERM.

A load balancer must stop sending new requests before the process stops answering them, and
requests already running (streams especially, which may last minutes) must end with a bill that
matches what was delivered. On SIGTERM (or Ctrl-C) the server:

1. *announces*: `/readyz` answers 503 `{"status": "draining"}` while everything else is served as
   before, for `FAREBOX_DRAIN_NOTICE_S` (default 0): long enough for the load balancer's health
   check to take the replica out (haproxy: `inter` x `fall`, plus a margin);
2. *drains*: the listening socket closes (new connections are refused; a load balancer retries
   them elsewhere), idle keep-alive connections close, and requests in flight run on for up to
   `FAREBOX_DRAIN_S` (default 30);
3. *cuts*: streams still running then are ended by their relay: no more upstream output, an
   error event saying the gateway is restarting, the usage chunk and `[DONE]`, and the bill
   settled for the output delivered (never more than was held; the rest of the hold released).
   Anything else still running a few seconds later is cancelled by uvicorn, and settles in its
   `finally` as when a client leaves.

Then the application's shutdown flushes the ledger and the process exits 0.

The app's lifespan hands its `Drain` to the server through the lifespan state
(`DRAIN_STATE_KEY`), so the server (net/drain_server.py) needs no reference to the app. One
`Drain` per process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("farebox.net")

DRAIN_STATE_KEY = "farebox.drain"


class Drain:
    """Whether this process is draining, and the streams to cut when the deadline comes."""

    def __init__(self) -> None:
        self.draining = False
        self.cut_done = False
        self._cutters: set[Callable[[], None]] = set()

    def begin(self) -> None:
        """Stop reporting ready (the load balancer takes the replica out)."""
        self.draining = True

    def register(self, cut: Callable[[], None]) -> Callable[[], None]:
        """Track a running stream; `cut()` ends it. Returns the function that forgets it."""
        if self.cut_done:
            cut()
        else:
            self._cutters.add(cut)
        return lambda: self._cutters.discard(cut)

    @property
    def running(self) -> int:
        """Streams in flight."""
        return len(self._cutters)

    def cut(self) -> None:
        """The deadline: end every stream still running (each settles what it delivered)."""
        self.cut_done = True
        cutters, self._cutters = list(self._cutters), set()
        if cutters:
            log.warning("drain deadline: cutting %d stream(s) still running", len(cutters))
        for cut in cutters:
            try:
                cut()
            except Exception:  # one stream's trouble must not keep the others running
                log.exception("cutting a stream failed")
