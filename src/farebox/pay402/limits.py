"""How many challenges (each mints a real invoice) one client may ask for.

The port is one method, so a shared per-client-IP limiter (a trusted-proxy aware one, or one
in Redis for several replicas) can replace the in-process window below without touching the
402 flow. The client's address is what the caller passes: today the socket's peer address.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from typing import Protocol


class ChallengeLimiter(Protocol):
    def allow(self, client: str) -> float | None:
        """None if `client` may have another challenge now, else seconds until it may."""
        ...


class WindowLimiter:
    """At most `limit` challenges per `window_s` per client, in this process (a sliding window
    of timestamps; the least recently seen clients are forgotten past `max_clients`)."""

    def __init__(self, limit: int, window_s: float = 60.0, max_clients: int = 50_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_clients = max_clients
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def allow(self, client: str, now: float | None = None) -> float | None:
        if self.limit <= 0:
            return None
        now = time.monotonic() if now is None else now
        times = self._seen.pop(client, None) or deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        self._seen[client] = times
        while len(self._seen) > self.max_clients:
            self._seen.popitem(last=False)
        if len(times) >= self.limit:
            return max(times[0] + self.window_s - now, 0.001)
        times.append(now)
        return None
