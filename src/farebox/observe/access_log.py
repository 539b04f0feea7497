"""One line per request on standard output: text (key=value) or JSON (one object per line).

A line holds the request id, method, route template, status, model, cost and timings, never a
body, a key, a credit_id or a raw URL (a path may carry ids; the route template does not).

The request layer does not format lines as requests end: it keeps each request's figures as a
plain tuple (a `Record`, observe/context.py) and hands them over every FLUSH_S, before a scrape
and at shutdown; they are formatted and written then, in one loop. A write is at most PIPE_BUF
bytes of whole lines, so lines from several worker processes sharing one pipe never interleave.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

import orjson

from farebox.money import format_usd
from farebox.observe.context import Record

CHUNK = 4096  # PIPE_BUF on Linux: a write this size or less to a pipe is never split


class AccessLog:
    def __init__(self, log_format: str = "text", stream: TextIO | None = None) -> None:
        self.json = log_format == "json"
        # Standard output as it is now: a later swap of sys.stdout (a CLI command's output
        # captured while a gateway runs in the same process) does not catch the lines.
        self.stream = stream if stream is not None else sys.stdout
        self._second = -1
        self._stamp = ""

    def _time(self, now: float) -> str:
        """ISO 8601 UTC with milliseconds; the part up to the second is formatted once a second."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((now - second) * 1000):03d}Z"

    def lines(self, records: Sequence[Record]) -> list[str]:
        """The records' lines, in their order."""
        wall = time.time() - time.perf_counter()  # perf_counter() + wall: the wall clock
        stamp = self._time
        usd: dict[int, str] = {0: "0"}  # many requests of one batch cost the same
        out: list[str] = []
        add = out.append
        for rid, method, route, status, model, nanos, up_s, ended, dur_s, ttfb_s in records:
            cost = usd.get(nanos)
            if cost is None:
                cost = usd[nanos] = format_usd(nanos)
            if self.json:
                ttfb_ms = round(ttfb_s * 1000, 2) if ttfb_s is not None else None
                obj = {
                    "time": stamp(wall + ended),
                    "event": "request",
                    "request_id": rid,
                    "method": method,
                    "route": route,
                    "status": status,
                    "model": model,
                    "cost_usd": cost,
                    "duration_ms": round(dur_s * 1000, 2),
                    "ttfb_ms": ttfb_ms,
                    "upstream_ms": round(up_s * 1000, 2),
                }
                add(orjson.dumps(obj).decode())
            else:
                ttfb = f"{ttfb_s * 1000:.2f}" if ttfb_s is not None else "-"
                add(
                    f"{stamp(wall + ended)} request_id={rid} method={method} route={route} "
                    f"status={status} model={model} cost_usd={cost} duration_ms={dur_s * 1000:.2f} "
                    f"ttfb_ms={ttfb} upstream_ms={up_s * 1000:.2f}"
                )
        return out

    def write(self, records: Sequence[Record]) -> None:
        """Write the records' lines now, in calls of at most CHUNK bytes of whole lines."""
        if not records:
            return
        stream = self.stream
        chunk: list[str] = []
        size = 0
        for line in self.lines(records):
            if chunk and size + len(line) + 1 > CHUNK:
                stream.write("\n".join(chunk) + "\n")
                stream.flush()  # one system call per chunk: never a line split between two
                chunk, size = [], 0
            chunk.append(line)
            size += len(line) + 1
        stream.write("\n".join(chunk) + "\n")
        stream.flush()
