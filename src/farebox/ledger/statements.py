"""The ledger's hot-path statements: SQLAlchemy Core, compiled once per dialect at import and
run on the transaction's DBAPI cursor (see farebox.db.compiled)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Table,
    bindparam,
    case,
    delete,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from farebox.db.compiled import CompiledStatement, fail_unless
from farebox.db.schema import accounts, api_keys, holds, queries, transfers

AVAILABLE = accounts.c.credits_posted - accounts.c.debits_posted - accounts.c.debits_pending

DEBIT_PENDING = CompiledStatement(
    update(accounts)
    .where(accounts.c.id == bindparam("p_account"))
    .where(bindparam("p_amount") <= AVAILABLE)
    .values(debits_pending=accounts.c.debits_pending + bindparam("p_amount"))
)
RELEASE_PENDING = CompiledStatement(
    update(accounts)
    .where(accounts.c.id == bindparam("p_account"))
    .values(debits_pending=accounts.c.debits_pending - bindparam("p_amount"))
)


def _hold_key(settling: bool) -> Any:
    """Reserve `p_amount` on a key's period counter if the key is live, of the expected
    generation and under its limit. Posted usage counts only while the key is still in the same
    period (`p_period`); a new period starts from zero (pending holds carry over until they
    settle). `settling`: the same UPDATE first applies a settlement on the key (`p_released`,
    `p_posted`), as SETTLE_KEY would."""
    posted: Any = api_keys.c.period_posted
    pending: Any = api_keys.c.period_pending
    if settling:
        posted = posted + bindparam("p_posted")
        pending = pending - bindparam("p_released")
    period_posted = case(
        (api_keys.c.period_key == bindparam("p_period"), posted), else_=literal_column("0")
    )
    values: dict[str, Any] = {
        "period_posted": period_posted,
        "period_key": bindparam("p_period"),
        "period_pending": pending + bindparam("p_amount"),
    }
    if settling:
        values["total_posted"] = api_keys.c.total_posted + bindparam("p_posted")
    return (
        update(api_keys)
        .where(api_keys.c.id == bindparam("p_key"))
        .where(api_keys.c.revoked_at.is_(None))
        .where(or_(api_keys.c.expire_at.is_(None), api_keys.c.expire_at > bindparam("p_now")))
        .where(api_keys.c.period_generation == bindparam("p_generation"))
        .where(
            or_(
                api_keys.c.usage_limit.is_(None),
                period_posted + pending + bindparam("p_amount") <= api_keys.c.usage_limit,
            )
        )
        .values(values)
    )


HOLD_KEY = CompiledStatement(_hold_key(settling=False))
SETTLE_DEBIT = CompiledStatement(
    update(accounts)
    .where(accounts.c.id == bindparam("p_account"))
    .values(
        debits_pending=accounts.c.debits_pending - bindparam("p_released"),
        debits_posted=accounts.c.debits_posted + bindparam("p_posted"),
    )
)
SETTLE_CREDIT = CompiledStatement(
    update(accounts)
    .where(accounts.c.id == bindparam("p_account"))
    .values(
        credits_pending=accounts.c.credits_pending - bindparam("p_released"),
        credits_posted=accounts.c.credits_posted + bindparam("p_posted"),
    )
)
SETTLE_KEY = CompiledStatement(
    update(api_keys)
    .where(api_keys.c.id == bindparam("p_key"))
    .values(
        period_pending=api_keys.c.period_pending - bindparam("p_released"),
        period_posted=api_keys.c.period_posted + bindparam("p_posted"),
        total_posted=api_keys.c.total_posted + bindparam("p_posted"),
    )
)
# A settlement and new holds of one account, or of one key, as one statement (a tick that
# assumes everyone can afford what they want, see tick.py): as SETTLE_* then DEBIT_PENDING or
# HOLD_KEY would leave the row, or no change at all when the hold does not fit.
SETTLE_AND_DEBIT = CompiledStatement(
    update(accounts)
    .where(accounts.c.id == bindparam("p_account"))
    .where(
        bindparam("p_amount")
        <= accounts.c.credits_posted
        - (accounts.c.debits_posted + bindparam("p_posted"))
        - (accounts.c.debits_pending - bindparam("p_released"))
    )
    .values(
        debits_pending=accounts.c.debits_pending - bindparam("p_released") + bindparam("p_amount"),
        debits_posted=accounts.c.debits_posted + bindparam("p_posted"),
    )
)
SETTLE_AND_HOLD_KEY = CompiledStatement(_hold_key(settling=True))
RELEASE_KEY = CompiledStatement(
    update(api_keys)
    .where(api_keys.c.id == bindparam("p_key"))
    .values(period_pending=api_keys.c.period_pending - bindparam("p_amount"))
)
BALANCE = CompiledStatement(
    select(accounts.c.credits_posted, accounts.c.debits_posted, accounts.c.debits_pending).where(
        accounts.c.id == bindparam("p_account")
    )
)
KEY_STATE = CompiledStatement(
    select(
        api_keys.c.revoked_at,
        api_keys.c.expire_at,
        api_keys.c.period_generation,
        api_keys.c.usage_limit,
        api_keys.c.period_key,
        api_keys.c.period_posted,
        api_keys.c.period_pending,
    ).where(api_keys.c.id == bindparam("p_key"))
)
# What was posted on pending transfers (to settle the rest of a request whose holds were swept).
POSTED_ON = CompiledStatement(
    select(transfers.c.pending_id, transfers.c.amount)
    .where(transfers.c.pending_id.in_(bindparam("p_ids", expanding=True)))
    .where(transfers.c.flags == bindparam("p_flags"))
)
# Whoever deletes a hold's row resolves its pending transfer (a settlement or the sweeper).
RESOLVE_HOLDS = CompiledStatement(
    delete(holds)
    .where(holds.c.transfer_id.in_(bindparam("p_ids", expanding=True)))
    .returning(holds.c.transfer_id)
)


def _all_columns(table: Table) -> dict[str, Any]:
    """Every column as a bound parameter of its own name (but a table's serial id)."""
    return {
        c.name: bindparam(c.name)
        for c in table.c
        if not (c.primary_key and c.autoincrement is True)
    }


INSERT_TRANSFERS = CompiledStatement(
    insert(transfers).values(_all_columns(transfers)), bulk=transfers
)
INSERT_HOLDS = CompiledStatement(insert(holds).values(_all_columns(holds)), bulk=holds)
# The same, skipping a transfer that exists (the row count says how many went in): for a tick
# that assumed every hold it settles is still open, where a swept one has its resolving row.
INSERT_TRANSFERS_IF_NEW = CompiledStatement(
    {
        "postgresql": postgresql.insert(transfers)
        .values(_all_columns(transfers))
        .on_conflict_do_nothing()
    },
    bulk=transfers,
)


def _history_upsert(ins: Any) -> Any:
    """History rows; a request whose earlier holds the sweeper resolved (and recorded) already
    has a row: it gets the settlement's counts and the sum of both prices."""
    ins = ins.values(_all_columns(queries))
    return ins.on_conflict_do_update(
        index_elements=[queries.c.request_id],
        set_={
            "price": queries.c.price + ins.excluded.price,
            "input_count": ins.excluded.input_count,
            "output_count": ins.excluded.output_count,
            "query_source": ins.excluded.query_source,
        },
    )


UPSERT_QUERIES = CompiledStatement(
    {
        "sqlite": _history_upsert(sqlite.insert(queries)),
        "postgresql": _history_upsert(postgresql.insert(queries)),
    },
    bulk=queries,
)


RETIME_HOLDS = CompiledStatement(
    update(holds)
    .where(holds.c.request_id == bindparam("p_request"))
    .values(expires_at=bindparam("p_timeout"))
)
RECORD_PROGRESS = CompiledStatement(
    update(holds)
    .where(holds.c.request_id == bindparam("p_request"))
    .where(holds.c.seq == literal_column("0"))
    .values(recorded=bindparam("p_recorded"), recovery=bindparam("p_recovery"))
)

# A tick in a transaction tries the common case first and rolls back to here if it fails.
SAVEPOINT = CompiledStatement(text("SAVEPOINT tick"))
ROLLBACK_TO_SAVEPOINT = CompiledStatement(text("ROLLBACK TO SAVEPOINT tick"))


# PostgreSQL, the first statement of a tick that assumes the common case (see tick.py; its
# UPDATEs follow, joined by `Session.send_together`): claim the settled holds and write the
# tick's transfers, open holds and history in one statement. It fails unless it claimed every
# hold (`p_claims` of them: none was swept) and every transfer went in (`p_moves`: a swept hold
# already has its resolving transfer).
RESOLVE_AND_RECORD = CompiledStatement(
    {
        "postgresql": (
            f"WITH claimed AS ({RESOLVE_HOLDS.bind_in('postgresql', 'p_ids', [])[0]}), "
            f"moved AS ({INSERT_TRANSFERS_IF_NEW.bulk_sql('p_transfers')} RETURNING 1), "
            f"opened AS ({INSERT_HOLDS.bulk_sql('p_holds')}), "
            f"recorded AS ({UPSERT_QUERIES.bulk_sql('p_queries')}) "
            "SELECT "
            + fail_unless(
                "(SELECT count(*) FROM claimed) = %(p_claims)s "
                "AND (SELECT count(*) FROM moved) = %(p_moves)s"
            )
        )
    }
)
