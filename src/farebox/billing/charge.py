"""One request's money: the holds it took, and its settlement.

Hold before the upstream call; extend while output streams; post the actual cost (never more than
held) and void the rest. A request that produced nothing is voided: nothing is charged.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from farebox.billing.leases import LeaseKeeper, Progress
from farebox.errors import InsufficientFunds, KeyLimitReached, Unauthorized
from farebox.ledger.service import Ledger
from farebox.ledger.types import (
    Balance,
    HoldRequest,
    HoldResult,
    KeyBudget,
    QueryRecord,
    Refusal,
    Settlement,
    SettleResult,
)
from farebox.money import format_usd, nanos_to_usd
from farebox.observe.context import note_settled
from farebox.observe.request_id import RequestIds

# Reloads a key whose limits changed since it was cached; returns its fresh budget.
KeyReloader = Callable[[], Awaitable[KeyBudget]]


class Admission(Protocol):
    """A key's model scope and rate limits (limits/gate.py), checked before the first hold."""

    async def admit(self) -> None:
        """Raise (403, 429) to refuse the request; nothing has been held yet."""
        ...

    def settled(self, query: QueryRecord | None) -> None:
        """The request settled (its tokens count toward the key's tokens per minute)."""
        ...


def _usd(nanos: int) -> str:
    """Exact USD for a message: $0.0000001 stays $0.0000001, never "$0"."""
    return "$" + format_usd(nanos)


def insufficient_funds(balance: Balance | None, needed: int) -> InsufficientFunds:
    bal = balance or Balance(0, 0, 0)
    return InsufficientFunds(
        f"Insufficient balance: this request needs at least {_usd(needed)} but only "
        f"{_usd(max(bal.available, 0))} is available ({_usd(bal.balance)} balance, "
        f"{_usd(bal.reserved)} reserved by requests in flight). Top up with "
        "POST /topup/create/btc-lightning, or lower max_tokens.",
        balance=nanos_to_usd(bal.balance),
        reserved=nanos_to_usd(bal.reserved),
        available=nanos_to_usd(bal.available),
    )


def key_limit_reached(remaining: int | None, needed: int) -> KeyLimitReached:
    return KeyLimitReached(
        f"This API key's spending limit is reached: the request needs at least {_usd(needed)} "
        f"and the key has {_usd(max(remaining or 0, 0))} left in its period. Raise "
        "usage_limit_usd with PATCH /keys/{id}, or wait for the reset.",
    )


def charge_ids() -> RequestIds:
    """A process's ids for its charges (keys of the ledger's transfers): 16 random hex digits
    and a counter."""
    return RequestIds(prefix="", random_bytes=8)


@dataclass
class Charge:
    """The holds of one request and how it settles."""

    ledger: Ledger
    account_id: str
    key: KeyBudget | None
    hold_timeout_s: float
    reload_key: KeyReloader | None = None
    leases: LeaseKeeper | None = None  # renews the holds while the request runs
    admission: Admission | None = None  # the key's scope and rate limits, if it has any
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    holds: list[tuple[str, int]] = field(default_factory=list)
    settled: bool = False
    created_at: float = field(default_factory=time.time)
    held: int = 0  # the sum of `holds`

    def _request(
        self, want: int, minimum: int, recorded: int | None, recovery: str | None
    ) -> HoldRequest:
        return HoldRequest(
            transfer_id=f"{self.request_id}.{len(self.holds)}",
            request_id=self.request_id,
            seq=len(self.holds),
            account_id=self.account_id,
            want=want,
            minimum=minimum,
            timeout_at=time.time() + self.hold_timeout_s,
            key=self.key,
            recorded=recorded,
            recovery=recovery,
        )

    async def _hold(
        self, want: int, minimum: int, recorded: int | None, recovery: str | None
    ) -> HoldResult:
        result = await self.ledger.hold(self._request(want, minimum, recorded, recovery))
        if result.refusal is Refusal.KEY_INVALID and self.reload_key is not None:
            # The key's period settings changed on another replica: reload and try once more
            # (reload raises Unauthorized if it was revoked or expired).
            self.key = await self.reload_key()
            result = await self.ledger.hold(self._request(want, minimum, recorded, recovery))
        if result.ok:
            if not self.holds and self.leases is not None:
                self.leases.track(self.request_id)
            self.holds.append((result.transfer_id, result.held))
            self.held += result.held
        return result

    async def open(self, want: int, minimum: int) -> int:
        """Hold up to `want`, at least `minimum`; 402 if not even the minimum can be held.
        The key is admitted first (403 outside its models, 429 past its rate limits)."""
        if self.admission is not None and not self.holds:
            await self.admission.admit()
        if want <= 0:
            return 0  # a free model: nothing to hold; the settlement still records the query
        result = await self._hold(want, max(minimum, 1), None, None)
        if result.ok:
            return result.held
        if result.refusal is Refusal.KEY_LIMIT:
            raise key_limit_reached(result.key_remaining, minimum)
        if result.refusal is Refusal.KEY_INVALID:
            raise Unauthorized("This API key is no longer valid. Create a new one with POST /keys.")
        raise insufficient_funds(result.balance, minimum)

    async def extend(self, want: int, minimum: int, recorded: int, recovery: str | None) -> int:
        """Hold more for a running request; 0 when the customer cannot pay for more."""
        result = await self._hold(want, max(minimum, 1), recorded, recovery)
        return result.held if result.ok else 0

    def settle(self, actual: int, query: QueryRecord | None) -> asyncio.Future[SettleResult]:
        """Post min(actual, held) and void the rest, group-committed with other requests."""
        self.settled = True
        if self.leases is not None:
            self.leases.untrack(self.request_id)
        note_settled(query.model if query is not None else None, max(0, min(actual, self.held)))
        if self.admission is not None:
            self.admission.settled(query)
        if not self.holds and query is None:
            done: asyncio.Future[SettleResult] = asyncio.get_running_loop().create_future()
            done.set_result(SettleResult(self.request_id, 0))
            return done
        return self.ledger.settle_later(
            Settlement(
                request_id=self.request_id,
                account_id=self.account_id,
                key_id=self.key.key_id if self.key else None,
                holds=tuple(self.holds),
                actual=max(0, min(actual, self.held)),
                query=query,
                created_at=self.created_at,
            )
        )

    def report_progress(self, progress: Progress) -> None:
        """How to read the usage delivered so far (recorded with each renewal, for crashes)."""
        if self.leases is not None:
            self.leases.set_progress(self.request_id, progress)

    def void(self) -> asyncio.Future[SettleResult]:
        return self.settle(0, None)
