"""Every table, as SQLAlchemy Core. Money columns are integer nanodollars; times are Unix seconds."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# Ledger accounts (TigerBeetle's four balances). Customer accounts' id is their credit_id.
accounts = Table(
    "accounts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # "customer" | "system"
    Column("flags", Integer, nullable=False, default=0),
    Column("debits_pending", BigInteger, nullable=False, default=0),
    Column("debits_posted", BigInteger, nullable=False, default=0),
    Column("credits_pending", BigInteger, nullable=False, default=0),
    Column("credits_posted", BigInteger, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
)

# Immutable transfers. A pending transfer is resolved at most once: by one post or void transfer
# whose pending_id names it (unique), and its row in `holds` is deleted in the same transaction.
transfers = Table(
    "transfers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("debit_account_id", String(64), nullable=False),
    Column("credit_account_id", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("pending_id", String(64), nullable=True, unique=True),
    Column("timeout_at", Float, nullable=True),
    Column("code", String(16), nullable=False),
    Column("flags", Integer, nullable=False, default=0),
    Column("key_id", String(32), nullable=True),
    Column("ref", String(128), nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_transfers_debit", "debit_account_id"),
    Index("ix_transfers_credit", "credit_account_id"),
)

# Open (unresolved) pending transfers: the sweeper's work list, and the guard that makes a
# settle and a sweep of the same hold race safely (whoever deletes the row resolves it).
holds = Table(
    "holds",
    metadata,
    Column("transfer_id", String(64), primary_key=True),
    Column("request_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("account_id", String(64), nullable=False),
    Column("credit_account_id", String(64), nullable=False),
    Column("key_id", String(32), nullable=True),
    Column("amount", BigInteger, nullable=False),
    Column("expires_at", Float, nullable=False),
    # Usage already delivered to the customer (nanodollars) and the history row to write if
    # the process dies: the sweeper posts this much instead of voiding everything.
    Column("recorded", BigInteger, nullable=False, default=0),
    Column("recovery", Text, nullable=True),
    Index("ix_holds_expires", "expires_at"),
    Index("ix_holds_request", "request_id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_encrypted", Text, nullable=False),
    Column("key_hint", String(16), nullable=False),
    Column("usage_limit", BigInteger, nullable=True),
    Column("reset_period", String(16), nullable=True),
    Column("period_generation", Integer, nullable=False, default=0),
    Column("period_key", String(48), nullable=False, default=""),
    Column("period_posted", BigInteger, nullable=False, default=0),
    Column("period_pending", BigInteger, nullable=False, default=0),
    Column("total_posted", BigInteger, nullable=False, default=0),
    Column("expire_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Index("ix_api_keys_account", "account_id"),
)

# One row per paid request (PPQ's query history). Never any prompt or completion text.
queries = Table(
    "queries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False, unique=True),
    Column("account_id", String(64), nullable=False),
    Column("key_id", String(32), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("model", String(128), nullable=False),
    Column("input_count", BigInteger, nullable=False, default=0),
    Column("output_count", BigInteger, nullable=False, default=0),
    Column("price", BigInteger, nullable=False),
    Column("query_type", String(32), nullable=False),
    Column("query_source", String(32), nullable=False),
    Column("is_online", Boolean, nullable=False, default=False),
    Column("is_free_model", Boolean, nullable=False, default=False),
    Index("ix_queries_account_time", "account_id", "created_at"),
    Index("ix_queries_key_time", "key_id", "created_at"),
)

# Small key/value store for instance-wide values (the generated secret key, for one).
meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
