"""Money is an integer count of nanodollars (1 USD = 1_000_000_000). Floats never touch the ledger."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal, InvalidOperation

NANOS_PER_USD = 1_000_000_000
TOKENS_PER_MILLION = 1_000_000


class MoneyError(ValueError):
    """A USD amount that cannot be turned into nanodollars."""


def usd_to_nanos(value: str | int | float | Decimal) -> int:
    """Parse a USD amount into nanodollars, exactly (rounding half-even below a nanodollar).

    Floats are converted through their shortest decimal repr, so 0.1 means ten cents.
    """
    if isinstance(value, bool):
        raise MoneyError("amount must be a number, not a boolean")
    try:
        dec = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError) as exc:
        raise MoneyError(f"{value!r} is not a number") from exc
    if not dec.is_finite():
        raise MoneyError(f"{value!r} is not a finite number")
    return int((dec * NANOS_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


def nanos_to_usd(nanos: int) -> float:
    """Nanodollars as a USD JSON number, for display only."""
    return nanos / NANOS_PER_USD


def per_million_cost(units: int, nanos_per_million: int) -> int:
    """Cost of `units` at a rate in nanodollars per million units, rounded up to a nanodollar."""
    if units <= 0 or nanos_per_million <= 0:
        return 0
    return -((-units * nanos_per_million) // TOKENS_PER_MILLION)


def ceil_div(numerator: int, denominator: int) -> int:
    return -((-numerator) // denominator)


def decimal_usd_to_nanos(value: Decimal) -> int:
    """Round a Decimal USD amount up to a whole nanodollar (used for derived prices)."""
    return int((value * NANOS_PER_USD).to_integral_value(rounding=ROUND_CEILING))


def format_usd(nanos: int) -> str:
    """Exact decimal USD string for headers, e.g. 50400 -> "0.0000504"."""
    sign = "-" if nanos < 0 else ""
    whole, frac = divmod(abs(nanos), NANOS_PER_USD)
    text = f"{whole}.{frac:09d}".rstrip("0").rstrip(".")
    return sign + text
