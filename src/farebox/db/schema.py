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
    UniqueConstraint,
)

metadata = MetaData()

# Ledger accounts (TigerBeetle's four balances). A customer account's id is its public account
# id (`acct_…`); its secret credit_id is stored only as a hash, in account_credentials.
accounts = Table(
    "accounts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # "customer" | "system" | "pay402"
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
    # Per-key rate limits and model scope (limits/): NULL is none. Nullable so a replica of the
    # release before them keeps inserting keys while a newer one migrates (0006_key_limits).
    Column("rpm_limit", Integer, nullable=True),
    Column("tpm_limit", BigInteger, nullable=True),
    Column("allowed_models", Text, nullable=True),  # a JSON array of ids and fnmatch patterns
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
    # Private (enclave) queries: the attestation fingerprint, and why the charge is an estimate
    # when the enclave reported no usage (null: charged from the enclave's report).
    Column("attestation", String(64), nullable=True),
    Column("reconcile", String(32), nullable=True),
    Index("ix_queries_account_time", "account_id", "created_at"),
    Index("ix_queries_key_time", "key_id", "created_at"),
)

# Operator losses: requests whose upstream reported usage costing more than the customer could
# be charged (the customer is charged at most what was held). Written only when that happens,
# never on the ledger's path: the ledger stays exact, and this is the operator's record of what
# it paid for and could not bill. Money columns as everywhere; `upstream_cost` and
# `unbilled_cost` are null when the catalog knows no upstream cost for the model.
operator_losses = Table(
    "operator_losses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False, unique=True),
    Column("account_id", String(64), nullable=False),
    Column("key_id", String(32), nullable=True),
    Column("model", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("sale_value", BigInteger, nullable=False),  # the reported usage at the sale price
    Column("charged", BigInteger, nullable=False),  # what the customer was charged (<= held)
    Column("unbilled", BigInteger, nullable=False),  # sale_value - charged
    Column("upstream_cost", BigInteger, nullable=True),  # the reported usage at upstream cost
    Column("unbilled_cost", BigInteger, nullable=True),  # the unbilled part at upstream cost
    Index("ix_operator_losses_time", "created_at"),
)

# A customer account's secret credit_id, as its SHA-256 (keys/credentials.py): one row per
# customer account; rotating the credit_id replaces the hash.
account_credentials = Table(
    "account_credentials",
    metadata,
    Column("account_id", String(64), primary_key=True),
    Column("credit_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("rotated_at", Float, nullable=True),
)

# Small key/value store for instance-wide values. Never the instance secret itself: only its
# fingerprint (`secret_check`), so a replica started with another secret refuses to run.
meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# ---------------------------------------------------------------------------------------------
# Top-ups (payments/): one row per invoice a customer opened with a payment backend. The USD
# value is fixed at creation; a paid invoice is credited by one transfer whose id derives from
# (backend, backend_invoice_id), so webhooks, the poller and status calls can race safely.
topup_invoices = Table(
    "topup_invoices",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("backend", String(16), nullable=False),
    Column("backend_invoice_id", String(128), nullable=False),
    Column("method", String(16), nullable=False),
    Column("currency", String(8), nullable=False),  # as the customer stated it: SATS|BTC|USD
    Column("amount", String(40), nullable=False),  # exact decimal text in that currency
    Column("sats", BigInteger, nullable=False),
    Column("usd_nanos", BigInteger, nullable=False),
    Column("btc_usd", String(40), nullable=False),  # the rate the USD value was fixed at
    Column("bolt11", Text, nullable=True),
    Column("address", Text, nullable=True),
    Column("payment_uri", Text, nullable=True),
    Column("amount_due", String(40), nullable=True),  # in the method's own coin
    Column("checkout_url", Text, nullable=True),
    # pending | paid | expired | underpaid | paid_late | invalid
    Column("status", String(16), nullable=False),
    Column("overpaid", Boolean, nullable=False, default=False),
    Column("source", String(16), nullable=False),  # api | nwc
    Column("transfer_id", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("checked_at", Float, nullable=True),
    Column("paid_at", Float, nullable=True),
    UniqueConstraint("backend", "backend_invoice_id", name="uq_topup_backend_invoice"),
    Index("ix_topup_account_time", "account_id", "created_at"),
    Index("ix_topup_status_checked", "status", "checked_at"),
)

# The dev wallet's own invoices (demo and tests only): it is its own Lightning "node".
devwallet_invoices = Table(
    "devwallet_invoices",
    metadata,
    Column("payment_hash", String(64), primary_key=True),
    Column("bolt11", Text, nullable=False),
    Column("amount_msat", BigInteger, nullable=False),
    Column("preimage", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("paid_at", Float, nullable=True),
)

# Nostr Wallet Connect auto top-up: one connection per account; the URI (with its secret) is
# encrypted at rest. busy_until claims the account's single in-flight attempt across replicas.
nwc_connections = Table(
    "nwc_connections",
    metadata,
    Column("account_id", String(64), primary_key=True),
    Column("wallet_pubkey", String(64), nullable=False),
    Column("relays", Text, nullable=False),  # JSON list
    Column("uri_encrypted", Text, nullable=False),
    Column("threshold_nanos", BigInteger, nullable=False),
    Column("topup_nanos", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("busy_until", Float, nullable=True),
    Column("next_attempt_at", Float, nullable=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("last_attempt_at", Float, nullable=True),
    Column("last_success_at", Float, nullable=True),
    Column("last_error", Text, nullable=True),
)

nwc_attempts = Table(
    "nwc_attempts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("invoice_id", String(32), nullable=True),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Column("outcome", String(16), nullable=False),  # running | paid | failed
    Column("error", Text, nullable=True),
    Index("ix_nwc_attempts_account", "account_id", "started_at"),
)

# ---------------------------------------------------------------------------------------------
# Media (issue 4): generated files served at signed URLs, and async video jobs until settled.
# One stored file of a generation: GET /v1/media/{gen_id}/{n}.
media_objects = Table(
    "media_objects",
    metadata,
    Column("gen_id", String(40), primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("storage_key", String(200), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
)

# Async video jobs: the hold taken at submit and the upstream job, until settled.
video_jobs = Table(
    "video_jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("key_id", String(32), nullable=True),
    Column("model", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # pending | processing | completed | failed
    Column("provider", String(64), nullable=True),
    Column("upstream", Text, nullable=True),  # the adapter's job handle (JSON)
    Column("request", Text, nullable=False),  # the validated job (JSON), for resubmission
    Column("request_id", String(64), nullable=False),  # the Charge's request id
    Column("holds", Text, nullable=False),  # [[transfer_id, amount], ...] (JSON)
    Column("estimated", BigInteger, nullable=False),
    Column("cost", BigInteger, nullable=True),
    Column("seconds", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("content_type", String(64), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_poll_at", Float, nullable=False),
    Column("lease_until", Float, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    # The history row's query_source when the job settles: "api", or the 402 scheme that paid.
    Column("query_source", String(32), nullable=False, default="api"),
    Index("ix_video_jobs_due", "status", "next_poll_at"),
    Index("ix_video_jobs_account", "account_id"),
)

# ---------------------------------------------------------------------------------------------
# Pay per request (HTTP 402, pay402/): one row per Lightning payment presented as a credential,
# keyed by its payment hash (the primary key makes the credit happen once across replicas). The
# payment is credited to its own ledger account (kind "pay402", id in account_id), from which
# requests are held and charged like any other; what is not delivered stays there for a retry
# on the same endpoint until retry_until.
pay402_credentials = Table(
    "pay402_credentials",
    metadata,
    Column("payment_id", String(64), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("scheme", String(16), nullable=False),  # the scheme first presented: l402 | payment
    Column("endpoint", String(128), nullable=False),
    Column("price_nanos", BigInteger, nullable=False),  # credited (the price it was issued at)
    Column("sats", BigInteger, nullable=False),
    Column("paid_at", Float, nullable=False),  # first presented (and credited)
    Column("retry_until", Float, nullable=False),
)

# Cashu ecash paid per request (cashu/): one row per token received. Before the swap the row
# holds the blinding data of farebox's outputs (so a swap whose answer was lost can be
# restored), then the proofs farebox got; both encrypted with the instance secret's cipher, as
# API keys are. The value is credited to the receipt's own ledger account (kind "cashu"); what
# the request did not use goes back as a change token (stored encrypted, served for a while
# under the receipt's id), and the rest is the operator's, melted to Lightning by the admin CLI.
cashu_receipts = Table(
    "cashu_receipts",
    metadata,
    Column("id", String(32), primary_key=True),  # random; the payer's change id
    Column("account_id", String(64), nullable=False),
    Column("mint_url", String(256), nullable=False),
    Column("unit", String(16), nullable=False),
    Column("endpoint", String(128), nullable=False),
    # swapping | received | returned (change issued) | melting | melted
    Column("status", String(16), nullable=False),
    Column("token_sats", BigInteger, nullable=False),  # the payer's proofs
    Column("fee_sats", BigInteger, nullable=False),  # the mint's input fee on the swap
    Column("sats", BigInteger, nullable=False),  # received: token_sats - fee_sats
    Column("nanos_per_sat", BigInteger, nullable=False),  # the rate it was credited at
    Column("value_nanos", BigInteger, nullable=False),  # credited: sats * nanos_per_sat
    Column("vault", Text, nullable=False),  # encrypted JSON: outputs, then proofs
    Column("created_at", Float, nullable=False),
    Column("change_sats", BigInteger, nullable=True),
    Column("change_token", Text, nullable=True),  # encrypted cashuB
    Column("change_until", Float, nullable=True),  # the change id answers until then
    Column("kept_sats", BigInteger, nullable=True),  # the operator's, once change is issued
    Column("melted_at", Float, nullable=True),
    Index("ix_cashu_receipts_mint_status", "mint_url", "status"),
)

# ---------------------------------------------------------------------------------------------
# The web dashboard (dashboard/): one row per signed-in browser, keyed by the SHA-256 of the
# random id in its cookie (never the id itself). kind "customer" names an account; kind
# "operator" carries `admin_check`, a fingerprint of the admin token it signed in with, so
# changing FAREBOX_ADMIN_TOKEN ends every console session. A session ends at `expires_at`
# (absolute) or when idle too long after `last_seen_at`; signing out deletes the row.
dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # customer | operator
    Column("account_id", String(64), nullable=True),
    Column("csrf_token", String(64), nullable=False),
    Column("admin_check", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("last_seen_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_dashboard_sessions_account", "account_id"),
    Index("ix_dashboard_sessions_expires", "expires_at"),
)

# The API key the dashboard's playground bills, per account (an ordinary key of the account).
dashboard_keys = Table(
    "dashboard_keys",
    metadata,
    Column("account_id", String(64), primary_key=True),
    Column("key_id", String(32), nullable=False),
)
