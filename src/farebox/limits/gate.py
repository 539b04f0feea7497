"""Admission of one keyed request: its model scope, then its rate limits; and its tokens counted
at settlement.

Every paid request with an API key makes one Charge (billing/charge.py), and a Charge's first
hold is where money is first touched, so that is where the key is admitted: the Charge calls
`Admission.admit()` before its first hold (and before anything reaches an upstream), whatever the
surface: chat, messages, the web plugin (a chat model), embeddings, images, audio, video, data
and the private relay all open a Charge the same way. A refused request holds nothing and calls
nothing. At settlement the Charge hands its QueryRecord back; chat and embedding tokens (input
plus output of the settled request) count toward `tpm_limit`; other kinds count only as requests.
Keys without limits or scope get no Admission at all: the hot path pays one attribute check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from farebox.errors import RateLimited
from farebox.keys.store import ApiKey
from farebox.ledger.types import QueryRecord
from farebox.limits.scopes import Named, allows, model_names, model_not_allowed
from farebox.limits.windows import MemoryWindows, Verdict, WindowStore

log = logging.getLogger("farebox.limits")

TOKEN_QUERY_TYPES = frozenset({"chat", "embedding"})
# Settled tokens are written to a shared store at most this long after settling, every key's in
# one round trip (in-process counters are written at once).
FLUSH_S = 0.05


class KeyRateLimited(RateLimited):
    code = "rate_limit_exceeded"

    def __init__(self, message: str, retry_after_s: int, limit: str) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.limit = limit


def rate_limited(key: ApiKey, verdict: Verdict) -> KeyRateLimited:
    seconds = verdict.retry_after_s
    if verdict.limit == "rpm":
        what = f"its limit of {key.rpm_limit} requests per minute (rpm_limit)"
    else:
        what = f"its limit of {key.tpm_limit} tokens per minute (tpm_limit)"
    return KeyRateLimited(
        f"Rate limit reached for this API key: {what}. Try again in {seconds} s, or raise the "
        "limit with PATCH /keys/{id}.",
        seconds,
        verdict.limit,
    )


class KeyGate:
    """Scopes and rate limits of keys, over a WindowStore (this process', or Redis')."""

    def __init__(self, windows: WindowStore) -> None:
        self.windows = windows
        self._local = windows if isinstance(windows, MemoryWindows) else None
        self._tokens: dict[str, int] = {}  # settled, not yet written to the shared store
        self._flush: asyncio.Task[None] | None = None

    def admission(self, key: ApiKey | None, model: Named | str) -> Admission | None:
        """What a Charge checks for `key` on `model` (a catalog model, or a data endpoint's
        id); None for a keyless buyer or a key with neither limits nor scope."""
        if key is None or not key.restricted:
            return None
        return Admission(self, key, model_names(model))

    async def admit(self, key: ApiKey, names: Sequence[str]) -> None:
        """403 for a model outside the key's scope, 429 past a limit; else counts the request."""
        await self._judge(key, names, self.windows.admit)

    async def check(self, key: ApiKey, names: Sequence[str]) -> None:
        """`admit`'s 403 or 429, counting nothing: for a preflight that asks whether the request
        it announces would be admitted (private/relay.py)."""
        await self._judge(key, names, self.windows.peek)

    async def _judge(
        self,
        key: ApiKey,
        names: Sequence[str],
        ask: Callable[[str, int | None, int | None], Awaitable[Verdict]],
    ) -> None:
        if key.allowed_models is not None and not allows(key.allowed_models, names):
            raise model_not_allowed(names[0] if names else "")
        if key.rpm_limit is None and key.tpm_limit is None:
            return
        verdict = await ask(key.id, key.rpm_limit, key.tpm_limit)
        if not verdict.admitted:
            raise rate_limited(key, verdict)

    def settled(self, key: ApiKey, query: QueryRecord | None) -> None:
        """Count a settled request's tokens (quick; the store is written in the background)."""
        if key.tpm_limit is None or query is None or query.query_type not in TOKEN_QUERY_TYPES:
            return
        tokens = max(0, query.input_count) + max(0, query.output_count)
        if tokens == 0:
            return
        if self._local is not None:
            self._local.add_tokens_now(key.id, tokens)
            return
        self._tokens[key.id] = self._tokens.get(key.id, 0) + tokens
        if self._flush is None:
            self._flush = asyncio.get_running_loop().create_task(self._write_soon())

    async def _write_soon(self) -> None:
        await asyncio.sleep(FLUSH_S)
        counts, self._tokens, self._flush = self._tokens, {}, None
        try:
            await self.windows.add_tokens(counts)
        except Exception:  # never fail a settled request over its count
            log.warning("could not count settled requests' tokens", exc_info=True)

    async def drain(self) -> None:
        """Wait until the tokens settled so far are written (tests; shutdown)."""
        while self._flush is not None:
            await self._flush


@dataclass(frozen=True, slots=True)
class Admission:
    """One request's admission, kept by its Charge (billing/charge.py's Admission port)."""

    gate: KeyGate
    key: ApiKey
    names: tuple[str, ...]

    async def admit(self) -> None:
        await self.gate.admit(self.key, self.names)

    def settled(self, query: QueryRecord | None) -> None:
        self.gate.settled(self.key, query)
