"""One line per request on standard output: text (key=value) or JSON (one object per line).

A line holds the request id, method, route template, status, model, cost and timings, never a
body, a key, a credit_id or a raw URL (a path may carry ids; the route template does not). Each
line is written with one write call and is far below PIPE_BUF, so lines from several worker
processes sharing one pipe never interleave.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import orjson

from farebox.money import format_usd


class AccessLog:
    def __init__(self, log_format: str = "text", stream: TextIO | None = None) -> None:
        self.json = log_format == "json"
        self.stream = stream
        self._second = -1
        self._stamp = ""

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
        cost = format_usd(cost_nanos)
        duration_ms = round(duration_s * 1000, 2)
        ttfb_ms = round(ttfb_s * 1000, 2) if ttfb_s is not None else None
        upstream_ms = round(upstream_s * 1000, 2)
        if self.json:
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
            line = (
                f"{stamp} request_id={request_id} method={method} route={route} "
                f"status={status} model={model} cost_usd={cost} duration_ms={duration_ms} "
                f"ttfb_ms={ttfb_ms if ttfb_ms is not None else '-'} upstream_ms={upstream_ms}"
            )
        stream = self.stream if self.stream is not None else sys.stdout
        stream.write(line + "\n")
        stream.flush()
