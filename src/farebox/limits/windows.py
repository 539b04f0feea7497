"""Counting requests and tokens per key over the last minute: a fixed window with the previous
one weighted in (the "sliding window counter").

Each key keeps two counters per measure: the current minute-aligned window's and the previous
one's. The last minute's use is estimated as `previous × (1 − elapsed/60) + current`: exact when
use within the previous window was even, never off by more than the previous window's count, in
O(1) space and one round trip, and it cannot be gamed by bursting at a window's edge (a true
fixed window admits 2× the limit across the boundary; this admits at most the limit, give or
take the estimate's shape). The same rule runs in this process (MemoryWindows) and inside Redis
as one Lua script (limits/redis_windows.py), so replicas sharing a Redis share one count.

Admission: a request is admitted when the requests estimate plus this one is within rpm_limit
and the tokens estimate is below tpm_limit; only then is it counted (a refused request counts
for nothing). Tokens are added at settlement (limits/gate.py), so a request in flight is not
yet in the token count: tpm_limit is checked against what has settled in the last minute.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """0 wait: admitted (and counted). Otherwise the seconds until it would be, and which
    limit refused it ("rpm" or "tpm")."""

    wait_s: float = 0.0
    limit: str = ""

    @property
    def admitted(self) -> bool:
        return self.wait_s <= 0.0

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil(self.wait_s))


ADMITTED = Verdict()


class WindowStore(Protocol):
    async def admit(self, key_id: str, rpm: int | None, tpm: int | None) -> Verdict:
        """Admit (and count) one request of `key_id` under its limits, or say how long to wait."""
        ...

    async def peek(self, key_id: str, rpm: int | None, tpm: int | None) -> Verdict:
        """What `admit` would answer now, counting nothing (a preflight's question)."""
        ...

    async def add_tokens(self, counts: Mapping[str, int]) -> None:
        """Count the tokens settled by requests of each key id in `counts`."""
        ...


def wait_s(prev: float, cur: float, elapsed: float, limit: float, need: float) -> float:
    """Seconds until `prev × (1 − (elapsed + t)/W) + cur + need <= limit` (rolling into the
    next window, where `cur` becomes the previous count, when the current one is not enough)."""
    excess = prev * (1.0 - elapsed / WINDOW_S) + cur + need - limit
    if excess <= 0:
        return 0.0
    if prev > 0:
        t = excess * WINDOW_S / prev
        if t <= WINDOW_S - elapsed:
            return t
    rest = WINDOW_S - elapsed
    if cur + need <= limit or cur <= 0:
        return rest
    return rest + min(WINDOW_S, (cur + need - limit) * WINDOW_S / cur)


def decide(
    state: list[float], now: float, rpm: int | None, tpm: int | None, count: bool = True
) -> tuple[Verdict, list[float]]:
    """One admission on `state` = [window, requests prev, requests cur, tokens prev, tokens cur]
    (rolled to `now`'s window first); the state with this request counted if it is admitted
    (and `count`: a peek counts nothing). The Lua script in redis_windows.py is this function,
    line for line."""
    state = roll(state, now)
    window, rp, rc, tp, tc = state
    elapsed = now - window * WINDOW_S
    weight = 1.0 - elapsed / WINDOW_S
    if rpm is not None and rp * weight + rc + 1 > rpm:
        return Verdict(wait_s(rp, rc, elapsed, rpm, 1), "rpm"), state
    if tpm is not None and tp * weight + tc >= tpm:
        return Verdict(max(wait_s(tp, tc, elapsed, tpm, 0), 0.001), "tpm"), state
    if count:
        state[2] = rc + 1
    return ADMITTED, state


def roll(state: list[float], now: float) -> list[float]:
    """`state` moved to `now`'s window: the current counts become the previous ones when the
    window just ended, or both are zero after a longer pause."""
    window = math.floor(now / WINDOW_S)
    if state[0] == window:
        return state
    if state[0] == window - 1:
        return [window, state[2], 0.0, state[4], 0.0]
    return [window, 0.0, 0.0, 0.0, 0.0]


class MemoryWindows:
    """The counters of this process (no FAREBOX_REDIS_URL, or while Redis is unreachable)."""

    def __init__(self, clock: Callable[[], float] = time.time, max_keys: int = 100_000) -> None:
        self.clock = clock
        self.max_keys = max_keys
        self._state: dict[str, list[float]] = {}

    async def admit(self, key_id: str, rpm: int | None, tpm: int | None) -> Verdict:
        return self.admit_now(key_id, rpm, tpm)

    def admit_now(self, key_id: str, rpm: int | None, tpm: int | None) -> Verdict:
        verdict, state = decide(self._get(key_id), self.clock(), rpm, tpm)
        self._state[key_id] = state
        return verdict

    async def peek(self, key_id: str, rpm: int | None, tpm: int | None) -> Verdict:
        return self.peek_now(key_id, rpm, tpm)

    def peek_now(self, key_id: str, rpm: int | None, tpm: int | None) -> Verdict:
        return decide(list(self._get(key_id)), self.clock(), rpm, tpm, count=False)[0]

    async def add_tokens(self, counts: Mapping[str, int]) -> None:
        for key_id, tokens in counts.items():
            self.add_tokens_now(key_id, tokens)

    def add_tokens_now(self, key_id: str, tokens: int) -> None:
        state = roll(self._get(key_id), self.clock())
        state[4] += tokens
        self._state[key_id] = state

    def _get(self, key_id: str) -> list[float]:
        state = self._state.get(key_id)
        if state is not None:
            return state
        if len(self._state) >= self.max_keys:
            self._forget_idle()
        return [-2.0, 0.0, 0.0, 0.0, 0.0]

    def _forget_idle(self) -> None:
        """Drop keys idle for two windows (their counts are zero anyway); all if none are."""
        current = math.floor(self.clock() / WINDOW_S)
        for key_id in [k for k, s in self._state.items() if s[0] < current - 1]:
            del self._state[key_id]
        if len(self._state) >= self.max_keys:
            self._state.clear()
