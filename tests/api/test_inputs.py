"""Reading customer input with bounds: JSON depth, exact JSON for money, whole numbers in text,
echoes in error messages."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from farebox.errors import InvalidRequest, quoted
from farebox.inputs import (
    MAX_JSON_DEPTH,
    ascii_whole_number,
    content_length,
    nests_deeper_than,
    parse_exact_json_object,
    parse_json_object,
)


def nested(depth: int, kind: str = "list") -> bytes:
    """A JSON object whose "x" holds arrays or objects: `depth` levels in all."""
    inner = depth - 1
    if inner == 0:
        return b'{"x":1}'
    if kind == "list":
        return b'{"x":' + b"[" * inner + b"]" * inner + b"}"
    return b'{"x":' + b'{"a":' * inner + b"1" + b"}" * inner + b"}"


@pytest.mark.parametrize("kind", ["list", "object"])
def test_depth_counts_every_level_of_arrays_and_objects(kind: str) -> None:
    """The check leans on orjson's encoder limit (254 levels): if an orjson release moved it,
    these boundaries would fail."""
    for depth in (1, 2, 100, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 254, 255, 1000):
        value = orjson.loads(nested(depth, kind))
        assert nests_deeper_than(value, MAX_JSON_DEPTH) is (depth > MAX_JSON_DEPTH), depth


def test_bodies_up_to_the_depth_limit_are_read() -> None:
    assert parse_json_object(nested(MAX_JSON_DEPTH))["x"] is not None
    many_brackets = orjson.dumps({"messages": [{"content": [{"type": "text"}]}] * 500})
    assert len(parse_json_object(many_brackets)["messages"]) == 500


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 300, 1100, 2000, 5000])
@pytest.mark.parametrize("kind", ["list", "object"])
def test_deeper_bodies_are_a_400_that_says_so(depth: int, kind: str) -> None:
    for parse in (parse_json_object, lambda raw: parse_exact_json_object(raw, "{}")):
        with pytest.raises(InvalidRequest, match=f"deeper than {MAX_JSON_DEPTH} levels"):
            parse(nested(depth, kind))


def test_exact_json_reads_decimals_and_refuses_what_orjson_refuses() -> None:
    body = parse_exact_json_object(b'{"amount": 0.1, "n": 7, "e": 1e-3}', "{}")
    assert body == {"amount": Decimal("0.1"), "n": 7, "e": Decimal("0.001")}
    for raw in (
        b'{"amount": NaN}',
        b'{"amount": 1e999990}',
        b'{"a": "\\ud800"}',
        b"[1]",
        b"\xff",
        b'{"amount": ' + b"9" * 5000 + b"}",
    ):
        with pytest.raises(InvalidRequest):
            parse_exact_json_object(raw, "{}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("42", 42),
        ("000042", 42),
        ("\u00b2", None),  # str.isdigit() says yes, int() says no
        ("\u0663", None),  # int() reads it as 3
        ("-1", None),
        (" 1", None),
        ("1e3", None),
        ("", None),
        ("9" * 7, None),
    ],
)
def test_whole_numbers_are_short_ascii_digits(text: str, expected: int | None) -> None:
    assert ascii_whole_number(text, 6) == expected


def test_content_length_is_a_number_or_nothing() -> None:
    assert content_length("1024") == 1024
    assert content_length(None) is None
    assert content_length("\u00b2") is None
    assert content_length("9" * 5000) is None


def test_echoes_are_cut_short() -> None:
    assert quoted("gpt-5") == "'gpt-5'"
    assert len(quoted("x" * 100_000)) < 50
    assert len(quoted("\x1f" * 1000)) < 50
    deep = orjson.loads(b"[" * 1000 + b"]" * 1000)
    assert quoted(deep) == "[[[...]]]"
    assert len(quoted(list(range(100_000)))) < 50
