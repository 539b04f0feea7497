"""The ledger: accounts and immutable transfers in integer nanodollars (TigerBeetle in SQL)."""

from farebox.ledger.types import (
    Balance,
    HoldRequest,
    HoldResult,
    KeyBudget,
    QueryRecord,
    Refusal,
    Settlement,
    Transfer,
)

__all__ = [
    "Balance",
    "HoldRequest",
    "HoldResult",
    "KeyBudget",
    "QueryRecord",
    "Refusal",
    "Settlement",
    "Transfer",
]
