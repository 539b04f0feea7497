"""Route health: a circuit breaker per route (provider + upstream model), and the retry policy.

A route that fails `failures_to_open` times in a row is rested (open) for `cooldown_s`; then one
request probes it (half-open): success closes the breaker, failure rests it again for twice as
long (up to `max_cooldown_s`). Only failures before any output count (the router never retries
after the first byte). State lives in the Router that owns it, per process.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

ENV_PREFIX = "FAREBOX_ROUTE_"


def _env_number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(ENV_PREFIX + name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{ENV_PREFIX}{name} must be a number, got {raw!r}") from exc
    if value < 0:
        raise ValueError(f"{ENV_PREFIX}{name} must not be negative, got {raw!r}")
    return value


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    """How hard the router tries before giving up on a model (env: FAREBOX_ROUTE_*)."""

    retries: int = 1
    """Extra passes over a model's routes when every route failed retryably (before output)."""
    backoff_s: float = 0.2
    """Wait before the first retry pass; doubled for each further pass, with +-50 % jitter."""
    failures_to_open: int = 5
    """Consecutive failures that rest a route."""
    cooldown_s: float = 30.0
    """First rest of a route; doubled after each failed probe."""
    max_cooldown_s: float = 300.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RoutingPolicy:
        """FAREBOX_ROUTE_RETRIES, _BACKOFF_S, _FAILURES_TO_OPEN, _COOLDOWN_S, _MAX_COOLDOWN_S."""
        d = cls()
        return cls(
            retries=int(_env_number(env, "RETRIES", d.retries)),
            backoff_s=_env_number(env, "BACKOFF_S", d.backoff_s),
            failures_to_open=max(1, int(_env_number(env, "FAILURES_TO_OPEN", d.failures_to_open))),
            cooldown_s=_env_number(env, "COOLDOWN_S", d.cooldown_s),
            max_cooldown_s=_env_number(env, "MAX_COOLDOWN_S", d.max_cooldown_s),
        )

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry pass `retry` (1, 2, ...)."""
        base: float = self.backoff_s * 2.0 ** (retry - 1)
        return base * rng.uniform(0.5, 1.5)


@dataclass
class Breaker:
    """One route's breaker."""

    provider: str
    upstream_model: str
    policy: RoutingPolicy
    state: str = CLOSED
    failures: int = 0  # consecutive
    cooldown_s: float = 0.0
    opened_at: float | None = None
    retry_at: float | None = None
    probing: bool = False
    last_error: str | None = None
    total_failures: int = 0
    total_successes: int = 0

    def allow(self, now: float) -> bool:
        """May a request use this route now? (A half-open route lets one probe through.)"""
        if self.state == CLOSED:
            return True
        if self.state == OPEN and self.retry_at is not None and now >= self.retry_at:
            self.state = HALF_OPEN
        if self.state == HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    def success(self) -> None:
        self.state = CLOSED
        self.failures = 0
        self.cooldown_s = 0.0
        self.opened_at = self.retry_at = None
        self.probing = False
        self.total_successes += 1

    def failure(self, now: float, error: str) -> None:
        self.failures += 1
        self.total_failures += 1
        self.last_error = error
        probe_failed = self.state == HALF_OPEN
        self.probing = False
        if probe_failed or self.failures >= self.policy.failures_to_open:
            doubled = self.cooldown_s * 2 if probe_failed else self.policy.cooldown_s
            self.cooldown_s = min(max(doubled, self.policy.cooldown_s), self.policy.max_cooldown_s)
            self.state = OPEN
            self.opened_at = now
            self.retry_at = now + self.cooldown_s

    def release(self) -> None:
        """A request that neither succeeded nor failed (cancelled): let another probe."""
        self.probing = False

    def snapshot(self, now: float) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "upstream_model": self.upstream_model,
            "state": self.state,
            "consecutive_failures": self.failures,
            "failures": self.total_failures,
            "successes": self.total_successes,
            "retry_in_s": round(max(self.retry_at - now, 0.0), 3)
            if self.retry_at is not None
            else None,
            "last_error": self.last_error,
        }


@dataclass
class RouteHealth:
    """The breakers of one router, made as routes are first used."""

    policy: RoutingPolicy = field(default_factory=RoutingPolicy)
    clock: Callable[[], float] = time.monotonic
    breakers: dict[tuple[str, str], Breaker] = field(default_factory=dict)

    def breaker(self, provider: str, upstream_model: str) -> Breaker:
        key = (provider, upstream_model)
        found = self.breakers.get(key)
        if found is None:
            found = self.breakers[key] = Breaker(provider, upstream_model, self.policy)
        return found

    def snapshot(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [b.snapshot(now) for b in self.breakers.values()]

    def summary(self) -> dict[str, int]:
        states = [b.state for b in self.breakers.values()]
        return {
            "routes_used": len(states),
            "open": states.count(OPEN),
            "half_open": states.count(HALF_OPEN),
        }
