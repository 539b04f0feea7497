"""The one reader of money text: exact in each unit, and bounded before Decimal does any work, so
a hostile amount costs microseconds and gets a short 400 that names its field."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farebox.errors import InvalidRequest
from farebox.money import (
    MoneyError,
    format_usd,
    read_amount,
    read_usd,
    usd_to_nanos,
)


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        ("5", 9, 5_000_000_000),
        ("0.000000001", 9, 1),
        (0.1, 9, 100_000_000),
        (7, 9, 7_000_000_000),
        (Decimal("2.50"), 2, 250),
        ("1E+2", 0, 100),
        ("1.5e-3", 8, 150_000),
        (".5", 2, 50),
        ("5.", 2, 500),
        ("+5", 0, 5),
        ("-5", 0, -5),
        ("-0", 9, 0),
        ("0e999", 9, 0),
        ("1.0000000000", 2, 100),  # trailing zeros are not decimal places of value
        ("0.00001001", 8, 1001),
        ("999999999999999999", 0, 10**18 - 1),
    ],
)
def test_amounts_read_exactly_in_their_unit(value: object, places: int, expected: int) -> None:
    assert read_amount(value, "amount", places, "unit") == expected


HOSTILE: list[tuple[str, Any, str]] = [
    ("exponent that froze the server", "1e999990", "too large"),
    ("exponent that overflowed", "1e999999", "too large"),
    ("negative huge", "-1e999999", "too large"),
    ("tiny", "1e-999999", "decimal places"),
    ("exponent past Decimal's range", "1e9999999999", "not a number"),
    ("5000 digits", "9" * 5000, "40 characters"),
    ("5000 decimals", "0." + "0" * 5000 + "1", "40 characters"),
    ("superscript two", "\u00b2", "not a number"),
    ("arabic three", "\u0663", "not a number"),
    ("underscores", "1_000", "not a number"),
    ("padding", " 5 ", "not a number"),
    ("hex", "0x10", "not a number"),
    ("empty", "", "not a number"),
    ("nan", "NaN", "finite"),
    ("signalling nan", "sNaN", "finite"),
    ("infinity", "Infinity", "finite"),
    ("minus infinity", "-inf", "finite"),
    ("float nan", float("nan"), "finite"),
    ("float infinity", float("inf"), "finite"),
    ("huge float", 1.7976931348623157e308, "too large"),
    ("huge int", 10**30, "too large"),
    ("decimal overflow", Decimal("1e999999"), "too large"),
    ("decimal nan", Decimal("NaN"), "finite"),
    ("decimal of 5000 digits", Decimal("1." + "0" * 5000 + "1"), "40 digits"),
    ("boolean", True, "true or false"),
    ("null", None, "must be a number"),
    ("list", [5], "must be a number"),
    ("object", {"usd": 5}, "must be a number"),
    ("too many decimals", "1.0000000001", "9 decimal places"),
]


@pytest.mark.parametrize(("case", "value", "words"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_amounts_get_a_short_error_naming_the_field(
    case: str, value: object, words: str
) -> None:
    with pytest.raises(MoneyError) as caught:
        read_usd(value, "usage_limit_usd")
    error = caught.value
    assert isinstance(error, InvalidRequest) and error.param == "usage_limit_usd"
    assert error.message.startswith("usage_limit_usd")
    assert words in error.message
    assert len(error.message) < 120, error.message


def test_whole_units_and_decimal_places_name_the_unit() -> None:
    with pytest.raises(MoneyError, match="whole number of sats"):
        read_amount("1000.5", "amount", 0, "sats")
    with pytest.raises(MoneyError, match="in BTC with at most 8 decimal places"):
        read_amount("0.000000001", "amount", 8, "BTC")


def test_usd_to_nanos_rounds_half_even_below_a_nanodollar() -> None:
    """Catalog prices and settings keep their stated rule: rounded, not refused."""
    assert usd_to_nanos("0.0000000005") == 0
    assert usd_to_nanos("0.0000000015") == 2
    assert usd_to_nanos("1.25") == 1_250_000_000
    with pytest.raises(MoneyError):
        usd_to_nanos("1e999999")


@settings(max_examples=300, deadline=None)
@given(st.integers(-(10**26), 10**26))
def test_every_nanodollar_amount_reads_back_exactly(nanos: int) -> None:
    assert read_usd(format_usd(nanos), "amount") == nanos


NUMBERISH = st.from_regex(r"\A[+-]?[0-9]{0,25}\.?[0-9]{0,25}([eE][+-]?[0-9]{1,8})?\Z")


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=60), NUMBERISH, st.floats(), st.integers()))
def test_any_text_is_an_amount_or_a_money_error(value: object) -> None:
    """Nothing a customer writes raises anything else (no decimal.Overflow, no ValueError from
    int(), no InvalidOperation), and what is read is below 10**18 USD."""
    try:
        nanos = read_usd(value, "amount")
    except MoneyError as exc:
        assert len(exc.message) < 120
    else:
        assert abs(nanos) < 10**27
