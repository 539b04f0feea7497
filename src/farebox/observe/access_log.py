"""One line per request on standard output: text (key=value) or JSON (one object per line).

A line holds the request id, method, route template, status, model, cost and timings, never a
body, a key, a credit_id or a raw URL (a path may carry ids; the route template does not).

Lines are gathered and written FLUSH_S after the first of them (or as soon as they fill a
chunk), and at shutdown: a write system call per request costs more than the rest of the line.
A write is at most PIPE_BUF bytes of whole lines, so lines from several worker processes
sharing one pipe never interleave.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TextIO

import orjson

from farebox.money import format_usd

CHUNK = 4096  # PIPE_BUF on Linux: a write this size or less to a pipe is never split
FLUSH_S = 0.1  # the longest a line waits to be written


class AccessLog:
    def __init__(self, log_format: str = "text", stream: TextIO | None = None) -> None:
        self.json = log_format == "json"
        # Standard output as it is now: a later swap of sys.stdout (a CLI command's output
        # captured while a gateway runs in the same process) does not catch the lines.
        self.stream = stream if stream is not None else sys.stdout
        self._second = -1
        self._stamp = ""
        self._pending: list[str] = []
        self._size = 0

    def _time(self, now: float) -> str:
        """ISO 8601 UTC with milliseconds; the part up to the second is formatted once a second."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((now - second) * 1000):03d}Z"

    def write(
        self,
        request_id: str,
        method: str,
        route: str,
        status: int,
        model: str,
        cost_nanos: int,
        duration_s: float,
        ttfb_s: float | None,
        upstream_s: float,
    ) -> None:
        stamp = self._time(time.time())
        cost = format_usd(cost_nanos) if cost_nanos else "0"
        if self.json:
            duration_ms = round(duration_s * 1000, 2)
            ttfb_ms = round(ttfb_s * 1000, 2) if ttfb_s is not None else None
            upstream_ms = round(upstream_s * 1000, 2)
            line = orjson.dumps(
                {
                    "time": stamp,
                    "event": "request",
                    "request_id": request_id,
                    "method": method,
                    "route": route,
                    "status": status,
                    "model": model,
                    "cost_usd": cost,
                    "duration_ms": duration_ms,
                    "ttfb_ms": ttfb_ms,
                    "upstream_ms": upstream_ms,
                }
            ).decode()
        else:
            ttfb = f"{ttfb_s * 1000:.2f}" if ttfb_s is not None else "-"
            line = (
                f"{stamp} request_id={request_id} method={method} route={route} "
                f"status={status} model={model} cost_usd={cost} duration_ms={duration_s * 1000:.2f} "
                f"ttfb_ms={ttfb} upstream_ms={upstream_s * 1000:.2f}"
            )
        self._pending.append(line)
        self._size += len(line) + 1
        if self._size >= CHUNK:
            self.flush()
        elif len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_later(FLUSH_S, self.flush)
            except RuntimeError:  # no loop (a direct call): write now
                self.flush()

    def flush(self) -> None:
        """Write the gathered lines, in calls of at most CHUNK bytes of whole lines."""
        lines, self._pending, self._size = self._pending, [], 0
        if not lines:
            return
        stream = self.stream
        chunk: list[str] = []
        size = 0
        for line in lines:
            if chunk and size + len(line) + 1 > CHUNK:
                stream.write("\n".join(chunk) + "\n")
                stream.flush()
                chunk, size = [], 0
            chunk.append(line)
            size += len(line) + 1
        stream.write("\n".join(chunk) + "\n")
        stream.flush()
