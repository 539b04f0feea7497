"""Plain values the ledger takes and returns. The ledger never sees a request body."""

from __future__ import annotations

import enum
from dataclasses import field

from farebox.records import record

# Account flags
DEBITS_MUST_NOT_EXCEED_CREDITS = 1

# Transfer flags (a plain transfer has none)
PENDING = 1
POST_PENDING = 2
VOID_PENDING = 4

# System accounts, created by the first migration.
REVENUE = "revenue"
TOPUPS = "topups"
GRANTS = "grants"
SYSTEM_ACCOUNTS = (REVENUE, TOPUPS, GRANTS)


class Code(enum.StrEnum):
    QUERY = "query"
    TOPUP = "topup"
    GRANT = "grant"
    REFUND = "refund"
    ADJUST = "adjust"
    PAY402 = "pay402"  # a Lightning payment presented as an HTTP 402 credential (money in)
    CASHU = "cashu"  # ecash received with a request (X-Cashu), swapped at its mint (money in)
    CASHU_CHANGE = "cashu_change"  # what that request did not use, handed back as ecash (out)


@record
class Balance:
    credits_posted: int
    debits_posted: int
    debits_pending: int

    @property
    def balance(self) -> int:
        return self.credits_posted - self.debits_posted

    @property
    def reserved(self) -> int:
        return self.debits_pending

    @property
    def available(self) -> int:
        return self.balance - self.reserved


@record
class Transfer:
    """An immediate (single-phase) transfer. `id` makes retries idempotent."""

    id: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    code: str
    ref: str | None = None


@record
class KeyBudget:
    """The key whose period counter is held together with the account balance."""

    key_id: str
    period_key: str
    generation: int


@record
class HoldRequest:
    """Reserve up to `want` (at least `minimum`) from an account, and from a key's budget.

    With `minimum < want` the ledger holds as much as is available between the two, so a
    caller can cap work to what the customer can pay for instead of refusing it.
    """

    transfer_id: str
    request_id: str
    seq: int
    account_id: str
    want: int
    minimum: int
    timeout_at: float
    key: KeyBudget | None = None
    credit_account_id: str = REVENUE
    code: str = Code.QUERY
    # For an extension of a running request: usage delivered so far, and the history row to
    # write if the process dies; all the request's holds get the new timeout.
    recorded: int | None = None
    recovery: str | None = None


class Refusal(enum.StrEnum):
    FUNDS = "funds"
    KEY_LIMIT = "key_limit"
    KEY_INVALID = "key_invalid"
    NO_ACCOUNT = "no_account"


@record
class HoldResult:
    transfer_id: str
    held: int
    refusal: Refusal | None = None
    balance: Balance | None = None  # the account as it stood when refused
    key_remaining: int | None = None

    @property
    def ok(self) -> bool:
        return self.refusal is None


@record
class QueryRecord:
    """The history row written with a settlement (PPQ's fields; no prompt or completion text)."""

    model: str
    input_count: int
    output_count: int
    query_type: str = "chat"
    query_source: str = "api"
    is_online: bool = False
    is_free_model: bool = False
    attestation: str | None = None  # a private query: the enclave's attestation fingerprint
    reconcile: str | None = None  # why the charge is an estimate (a private query without usage)


@record
class Settlement:
    """Post `actual` across a request's holds (in order) and void the rest."""

    request_id: str
    account_id: str
    key_id: str | None
    holds: tuple[tuple[str, int], ...]  # (transfer_id, amount held)
    actual: int
    query: QueryRecord | None = None
    credit_account_id: str = REVENUE
    created_at: float | None = None


@record
class SettleResult:
    request_id: str
    posted: int
    lost: int = 0  # usage that could not be posted because the hold had already been swept
    swept_holds: tuple[str, ...] = field(default_factory=tuple)
