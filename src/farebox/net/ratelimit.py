"""Per-client limits for endpoints anyone may call that create something (`/accounts/create`;
later keyless 402 challenges and dashboard sign-up).

A token bucket per client key: `burst` at once, then `per_minute`. The buckets live behind a
small storage port (`RateStore`) so several replicas can share them (a Redis store); the one
here keeps them in this process, at most `max_keys` of them (the least recently used go first).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.types import Scope

from farebox.errors import RateLimited
from farebox.net.client_ip import ClientAddress, rate_key


@dataclass(frozen=True)
class RateRule:
    per_minute: float
    burst: int

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0 and self.burst > 0


class RateStore(Protocol):
    async def take(self, key: str, rule: RateRule, now: float) -> float:
        """Take one token from `key`'s bucket: 0.0 if taken, else the seconds until one is."""
        ...


class MemoryRateStore:
    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, when

    async def take(self, key: str, rule: RateRule, now: float) -> float:
        per_second = rule.per_minute / 60.0
        tokens, then = self._buckets.pop(key, (float(rule.burst), now))
        tokens = min(float(rule.burst), tokens + max(0.0, now - then) * per_second)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / per_second
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


class ClientRateLimited(RateLimited):
    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RateLimiter:
    """One rule for one kind of action, counted per client key."""

    def __init__(
        self,
        action: str,
        rule: RateRule,
        store: RateStore,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.action = action
        self.rule = rule
        self.store = store
        self.clock = clock

    async def check(self, client_key: str) -> None:
        """Count one `action` for the client; ClientRateLimited (429) past the rule."""
        if not self.rule.enabled:
            return
        wait = await self.store.take(f"{self.action}:{client_key}", self.rule, self.clock())
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise ClientRateLimited(
                f"Too many {self.action} requests from your address: at most "
                f"{self.rule.burst} at once, then {self.rule.per_minute:g} a minute. "
                f"Try again in {seconds} s.",
                retry_after_s=seconds,
            )


class PerClientLimit:
    """A limiter counted per client address (see net/client_ip.py for who the client is)."""

    def __init__(self, limiter: RateLimiter, clients: ClientAddress) -> None:
        self.limiter = limiter
        self.clients = clients

    async def check(self, scope: Scope) -> None:
        await self.limiter.check(rate_key(self.clients.of(scope)))
