"""Recording operator losses: a request's upstream reported usage worth more than it was charged.

A request is charged at most what it held, and the token cap sent upstream keeps an honest
upstream within that (see chat/caps.py). When an upstream still reports more (its tokenizer
counted the prompt higher than ours, or it ignored the cap) and the customer cannot pay the
difference, the operator has paid for work nobody is charged for: that is recorded as a loss
(ledger/losses.py), shown by `farebox ledger check` and `GET /admin/losses`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from farebox.billing.charge import Charge
from farebox.billing.pricing import TokenUsage, usage_cost
from farebox.catalog.model import CatalogModel
from farebox.db.database import Database
from farebox.ledger.losses import (
    LossTotals,
    OperatorLoss,
    insert_loss,
    loss_totals,
    recent_losses,
)

log = logging.getLogger("farebox.billing")


def loss_of(
    charge: Charge, model: CatalogModel, usage: TokenUsage, worth: int, charged: int
) -> OperatorLoss:
    """The loss of a request whose usage was `worth` more than the `charged` it settled for."""
    return OperatorLoss(
        request_id=charge.request_id,
        account_id=charge.account_id,
        key_id=charge.key.key_id if charge.key is not None else None,
        model=model.id,
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        sale_value=worth,
        charged=charged,
        upstream_cost=None if model.cost is None else usage_cost(model.cost, usage),
        created_at=time.time(),
    )


class LossBook:
    """Records operator losses (one write per loss; none for a request charged in full)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: set[asyncio.Task[None]] = set()

    async def record(self, loss: OperatorLoss) -> None:
        log.warning(
            "operator loss on %s (request %s): usage worth %d nanodollars, charged %d",
            loss.model,
            loss.request_id,
            loss.sale_value,
            loss.charged,
        )
        try:
            await self.db.write(insert_loss, loss)
        except Exception:  # a record must never fail the request it describes
            log.exception("recording the operator loss of request %s failed", loss.request_id)

    def record_soon(self, loss: OperatorLoss) -> None:
        """Record in the background (from code that cannot wait, e.g. a closing stream)."""
        task = asyncio.get_running_loop().create_task(self.record(loss))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def totals(self, since: float | None = None) -> LossTotals:
        return await self.db.read(loss_totals, since)

    async def recent(
        self, limit: int, since: float | None = None, account_id: str | None = None
    ) -> list[dict[str, Any]]:
        return await self.db.read(recent_losses, limit, since, account_id)
