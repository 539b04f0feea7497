"""Operator losses as rows: usage an upstream reported above what its customer was charged.

The ledger never posts more than a request held, so it stays exact; what the operator paid an
upstream for and could not charge is kept beside it, one row per request (written only when it
happens, never on the ledger's path). Two views of each loss: `unbilled`, the part of the
reported usage's sale value that was not charged; and `unbilled_cost`, what that part cost the
operator at the catalog's upstream cost (the usage's upstream cost in the same proportion,
rounded up; unknown when the catalog has no cost for the model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select

from farebox.db.schema import operator_losses
from farebox.money import ceil_div

MAX_REPORT_ROWS = 1000


@dataclass(frozen=True, slots=True)
class OperatorLoss:
    request_id: str
    account_id: str
    key_id: str | None
    model: str
    input_tokens: int
    output_tokens: int
    sale_value: int  # the reported usage at the sale price (with any addon's cost)
    charged: int  # what the customer was charged
    upstream_cost: int | None  # the reported usage at the catalog's upstream cost
    created_at: float

    @property
    def unbilled(self) -> int:
        return self.sale_value - self.charged

    @property
    def unbilled_cost(self) -> int | None:
        if self.upstream_cost is None or self.sale_value <= 0:
            return None
        return ceil_div(self.upstream_cost * self.unbilled, self.sale_value)


def insert_loss(conn: Connection, loss: OperatorLoss) -> None:
    conn.execute(
        insert(operator_losses).values(
            request_id=loss.request_id,
            account_id=loss.account_id,
            key_id=loss.key_id,
            model=loss.model,
            created_at=loss.created_at,
            input_tokens=loss.input_tokens,
            output_tokens=loss.output_tokens,
            sale_value=loss.sale_value,
            charged=loss.charged,
            unbilled=loss.unbilled,
            upstream_cost=loss.upstream_cost,
            unbilled_cost=loss.unbilled_cost,
        )
    )


@dataclass(frozen=True, slots=True)
class LossTotals:
    requests: int = 0
    unbilled: int = 0
    unbilled_cost: int = 0
    without_cost: int = 0  # losses of models with no known upstream cost


def loss_totals(conn: Connection, since: float | None = None) -> LossTotals:
    """Every recorded loss (since a time, if given), summed."""
    query = select(
        func.count(),
        func.coalesce(func.sum(operator_losses.c.unbilled), 0),
        func.coalesce(func.sum(operator_losses.c.unbilled_cost), 0),
        func.count() - func.count(operator_losses.c.unbilled_cost),
    )
    if since is not None:
        query = query.where(operator_losses.c.created_at >= since)
    row = conn.execute(query).one()
    return LossTotals(int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def recent_losses(
    conn: Connection,
    limit: int,
    since: float | None = None,
    account_id: str | None = None,
) -> list[dict[str, Any]]:
    """The latest recorded losses, newest first."""
    query = select(operator_losses).order_by(
        operator_losses.c.created_at.desc(), operator_losses.c.id.desc()
    )
    if since is not None:
        query = query.where(operator_losses.c.created_at >= since)
    if account_id is not None:
        query = query.where(operator_losses.c.account_id == account_id)
    rows = conn.execute(query.limit(min(max(limit, 1), MAX_REPORT_ROWS))).fetchall()
    return [dict(row._mapping) for row in rows]
