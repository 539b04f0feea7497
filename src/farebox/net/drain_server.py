"""The uvicorn server that drains on SIGTERM (the steps are in net/drain.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import socket
from types import FrameType

import uvicorn

from farebox.net.drain import DRAIN_STATE_KEY, Drain

log = logging.getLogger("farebox.net")

CUT_GRACE_S = 5.0
"""After the cut, how long streams get to write their last event and settle before uvicorn
cancels whatever is still running."""


class DrainingServer(uvicorn.Server):
    """uvicorn's server with net/drain.py's three steps around its own graceful shutdown."""

    def __init__(self, config: uvicorn.Config, drain_s: float, notice_s: float) -> None:
        config.timeout_graceful_shutdown = math.ceil(max(0.0, drain_s) + CUT_GRACE_S)
        super().__init__(config)
        self.drain_s = max(0.0, drain_s)
        self.notice_s = max(0.0, notice_s)

    def _drain(self) -> Drain | None:
        drain = self.lifespan.state.get(DRAIN_STATE_KEY) if self.lifespan is not None else None
        return drain if isinstance(drain, Drain) else None

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        drain = self._drain()
        if drain is not None:
            drain.begin()
            log.warning(
                "draining: /readyz answers 503%s; requests in flight get %g s",
                f" for {self.notice_s:g} s before new connections are refused"
                if self.notice_s
                else "",
                self.drain_s,
            )
            waited = 0.0
            while waited < self.notice_s and not self.force_exit:
                await asyncio.sleep(min(0.1, self.notice_s - waited))
                waited += 0.1
        timer = (
            asyncio.get_running_loop().call_later(self.drain_s, drain.cut)
            if drain is not None
            else None
        )
        try:
            await super().shutdown(sockets)
        finally:
            if timer is not None:
                timer.cancel()


def serve_draining(config: uvicorn.Config, drain_s: float, notice_s: float) -> None:
    """Run the server until SIGTERM or Ctrl-C, then drain; exit 0 once drained, 3 (uvicorn's
    status) if it never started."""
    install_exit_zero()
    server = DrainingServer(config, drain_s, notice_s)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        raise SystemExit(3)


def exit_zero_after_drain(sig: int, frame: FrameType | None) -> None:
    """The SIGTERM handler in force outside uvicorn's own: uvicorn raises the signal again once
    it has shut down gracefully, and a drained server has done its job (exit status 0)."""
    raise SystemExit(0)


def install_exit_zero() -> None:
    signal.signal(signal.SIGTERM, exit_zero_after_drain)
