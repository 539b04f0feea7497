"""Money is an integer count of nanodollars (1 USD = 1_000_000_000). Floats never touch the ledger.

Every amount a customer (or an operator file) writes goes through one reader, `read_amount`: it
bounds the text before `Decimal` sees it (at most 40 characters of ASCII decimal notation: no
NaN, Infinity, "²", "1_000" or padding), then the number before any arithmetic (below 10**18 in
the field's own unit, no digit below 10**-999), and returns a whole number of the field's
smallest unit (nanodollars for USD, sats for BTC). `Decimal("1e999990")` alone is cheap; what
froze the server was scaling such a number and turning it into an int (and echoing it).
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Context, Decimal, Inexact, InvalidOperation

from farebox.errors import InvalidRequest, quoted

NANOS_PER_USD = 1_000_000_000
USD_PLACES = 9  # a nanodollar is the smallest USD amount
TOKENS_PER_MILLION = 1_000_000
MAX_AMOUNT_CHARS = 40
MAX_AMOUNT_DIGITS = 18  # an amount is below 10**18 in its unit before any range check
_MAX_EXPONENT = 999  # 10**-999: far below any unit, far above what costs time

# Plain or exponent notation in ASCII digits, the exponent within Decimal's own range (Decimal
# itself would also take other scripts' digits, underscores, spaces, NaN and Infinity).
_AMOUNT_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,6})?")
_NOT_FINITE = frozenset({"nan", "snan", "inf", "infinity"})
# Exact arithmetic on bounded amounts: 40 digits scaled by at most 10**9 never needs rounding.
_EXACT = Context(
    prec=2 * MAX_AMOUNT_CHARS + 20,
    Emax=10 * _MAX_EXPONENT,
    Emin=-10 * _MAX_EXPONENT,
    traps=[InvalidOperation, Inexact],
)


class MoneyError(InvalidRequest, ValueError):
    """An amount that cannot be read. The message names the field and never echoes a long input;
    `param` is the field, so the API answers 400 without wrapping it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message, param=field)


def read_decimal(value: object, field: str) -> Decimal:
    """A finite Decimal from a JSON number (int, float, or Decimal from exact JSON) or decimal
    text, bounded in length, exponent and magnitude before any arithmetic."""
    if isinstance(value, bool):
        raise MoneyError(f"{field} must be a number, not true or false.", field)
    if isinstance(value, int):
        if abs(value) >= 10**MAX_AMOUNT_DIGITS:
            raise MoneyError(f"{field} is too large.", field)
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise MoneyError(f"{field} must be a finite number.", field)
        dec = value
    else:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise MoneyError(f"{field} must be a finite number.", field)
            text = repr(value)
        elif isinstance(value, str):
            text = value
        else:
            raise MoneyError(f"{field} must be a number.", field)
        if len(text) > MAX_AMOUNT_CHARS:
            raise MoneyError(
                f"{field} must be a number of at most {MAX_AMOUNT_CHARS} characters.", field
            )
        if not _AMOUNT_TEXT.fullmatch(text):
            if text.strip().lstrip("+-").lower() in _NOT_FINITE:
                raise MoneyError(f"{field} must be a finite number.", field)
            raise MoneyError(
                f"{field} {quoted(text)} is not a number: write it like 5 or 0.25.", field
            )
        dec = Decimal(text)
    if not dec:
        return dec
    _sign, digits, exponent = dec.as_tuple()
    assert isinstance(exponent, int)  # finite
    if len(digits) > MAX_AMOUNT_CHARS:
        raise MoneyError(f"{field} must be a number of at most {MAX_AMOUNT_CHARS} digits.", field)
    if dec.adjusted() >= MAX_AMOUNT_DIGITS:
        raise MoneyError(f"{field} is too large.", field)
    if exponent < -_MAX_EXPONENT:
        raise MoneyError(f"{field} has too many decimal places.", field)
    return dec


def read_amount(value: object, field: str, places: int, unit: str) -> int:
    """A customer's amount as a whole number of 10**-places `unit` (USD with places=9 gives
    nanodollars; BTC with places=8 gives sats). More decimal places than that are refused, not
    rounded; zero and negative amounts are returned for the caller's range check."""
    dec = read_decimal(value, field)
    if not dec:
        return 0
    scaled = dec.scaleb(places, _EXACT)
    whole = scaled.to_integral_value(context=_EXACT)
    if scaled != whole:
        if places == 0:
            raise MoneyError(f"{field} must be a whole number of {unit}.", field)
        raise MoneyError(f"{field} must be in {unit} with at most {places} decimal places.", field)
    return int(whole)


def read_usd(value: object, field: str) -> int:
    """A USD amount (JSON number or text) as nanodollars, exactly: see `read_amount`."""
    return read_amount(value, field, USD_PLACES, "USD")


def usd_to_nanos(value: str | int | float | Decimal, field: str = "amount") -> int:
    """A USD amount as nanodollars, rounding half-even below a nanodollar (catalog prices,
    settings). Bounded like `read_amount`. Floats are read through their shortest decimal repr,
    so 0.1 means ten cents."""
    dec = read_decimal(value, field)
    if not dec:
        return 0
    scaled = dec.scaleb(USD_PLACES, _EXACT)
    return int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN, context=_EXACT))


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
