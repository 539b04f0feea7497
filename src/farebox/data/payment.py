"""How one fixed-price call is paid: the seam between a data call and who pays for it.

A paid call runs validate -> quote -> pay -> call -> settle or refund. `DataService.quote` does
the first two with no I/O, so a keyless request can be priced (and refused with its 400) before
any challenge is issued. Paying is this port: an API key pays with a hold on its account and key
budget (`KeyPayment`); a 402 payment (L402, the Payment scheme) made before the call implements
the same three steps and is passed to `DataService.execute` the same way.
"""

from __future__ import annotations

from typing import Protocol

from farebox.billing.charge import Charge
from farebox.ledger.types import QueryRecord


class Payment(Protocol):
    """Holds the price before the upstream call; captures it on success, releases it otherwise."""

    @property
    def request_id(self) -> str: ...

    async def hold(self, amount: int) -> None:
        """Reserve `amount` nanodollars, or raise the 402-class error that says why not."""
        ...

    def capture(self, amount: int, query: QueryRecord) -> None:
        """Charge `amount` (at most what was held) and write the history row."""
        ...

    def release(self) -> None:
        """Nothing was delivered: charge nothing."""
        ...


class KeyPayment:
    """Paying with an API key: the ledger hold of the chat pipeline (account and key budget)."""

    def __init__(self, charge: Charge) -> None:
        self._charge = charge

    @property
    def request_id(self) -> str:
        return self._charge.request_id

    async def hold(self, amount: int) -> None:
        await self._charge.open(amount, amount)

    def capture(self, amount: int, query: QueryRecord) -> None:
        self._charge.settle(amount, query)

    def release(self) -> None:
        self._charge.void()
