"""Readers for the catalog file's JSON values. Errors name the file, the entry and the field."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson

from farebox.money import MoneyError, usd_to_nanos

from .errors import CatalogError
from .model import TokenPrices

JsonObject = Mapping[str, Any]

_PRICE_KEYS = ("input_per_1m", "output_per_1m", "cache_read_per_1m", "cache_write_per_1m")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")


@dataclass(frozen=True, slots=True)
class Where:
    """Where a value sits: the file, then the entry (e.g. "model 'gpt-5'")."""

    source: str
    entry: str | None = None

    def of(self, entry: str) -> Where:
        return Where(self.source, entry)

    def error(self, problem: str, field: str | None = None) -> CatalogError:
        parts = [self.source]
        if self.entry:
            parts.append(self.entry)
        if field:
            parts.append(f"field {field!r}")
        return CatalogError(": ".join(parts) + ": " + problem)


def check_keys(obj: JsonObject, allowed: Iterable[str], where: Where, prefix: str = "") -> None:
    """Refuse unknown keys (typos); keys starting with "_" are comments and ignored."""
    known = set(allowed)
    for key in obj:
        if key not in known and not key.startswith("_"):
            raise where.error(f"unknown field (known: {', '.join(sorted(known))})", prefix + key)


def as_object(value: object, where: Where, field: str | None = None) -> JsonObject:
    if not isinstance(value, Mapping):
        raise where.error(f"must be a JSON object, got {_kind(value)}", field)
    return value


def name(value: object, where: Where, field: str) -> str:
    """An id-like string: no spaces, starts with a letter or digit."""
    text = string(value, where, field)
    if not _NAME.match(text):
        raise where.error(f"{text!r} is not a valid name (letters, digits, ._:/@+-)", field)
    return text


def string(value: object, where: Where, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise where.error(f"must be a non-empty string, got {_kind(value)}", field)
    return value


def integer(value: object, where: Where, field: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.error(f"must be a whole number, got {_kind(value)}", field)
    if value < minimum:
        raise where.error(f"must be at least {minimum}, got {value}", field)
    return value


def boolean(value: object, where: Where, field: str) -> bool:
    if not isinstance(value, bool):
        raise where.error(f"must be true or false, got {_kind(value)}", field)
    return value


def seconds(value: object, where: Where, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise where.error(f"must be a positive number of seconds, got {value!r}", field)
    return float(value)


def iso_date(value: object, where: Where, field: str) -> str:
    text = string(value, where, field)
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise where.error(f"must be an ISO date like 2025-08-07, got {text!r}", field) from None


def usd_nanos(value: object, where: Where, field: str) -> int:
    """A non-negative USD amount ("1.25" or 1.25) as nanodollars."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise where.error(f'must be a USD amount like "1.25", got {_kind(value)}', field)
    try:
        nanos = usd_to_nanos(value)
    except MoneyError:
        raise where.error(f'must be a USD amount like "1.25", got {value!r}', field) from None
    if nanos < 0:
        raise where.error(f"must not be negative, got {value!r}", field)
    return nanos


def margin(value: object, where: Where, field: str) -> Decimal:
    """A markup fraction over cost: "0.20" is +20 %. Must be finite and not negative."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise where.error(f'must be a decimal fraction like "0.20", got {_kind(value)}', field)
    try:
        result = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError):
        problem = f'must be a decimal fraction like "0.20", got {value!r}'
        raise where.error(problem, field) from None
    if not result.is_finite() or result < 0:
        raise where.error(
            f"must be 0 or more, got {value!r} (set an explicit price to sell below cost)", field
        )
    return result


def token_prices(value: object, where: Where, field: str) -> TokenPrices:
    """{"input_per_1m": "1.25", "output_per_1m": "10", "cache_read_per_1m": ..., ...}."""
    obj = as_object(value, where, field)
    check_keys(obj, _PRICE_KEYS, where, prefix=f"{field}.")
    for key in ("input_per_1m", "output_per_1m"):
        if obj.get(key) is None:
            raise where.error("is required", f"{field}.{key}")
    cache_read, cache_write = obj.get("cache_read_per_1m"), obj.get("cache_write_per_1m")
    return TokenPrices(
        input=usd_nanos(obj["input_per_1m"], where, f"{field}.input_per_1m"),
        output=usd_nanos(obj["output_per_1m"], where, f"{field}.output_per_1m"),
        cache_read=None
        if cache_read is None
        else usd_nanos(cache_read, where, f"{field}.cache_read_per_1m"),
        cache_write=None
        if cache_write is None
        else usd_nanos(cache_write, where, f"{field}.cache_write_per_1m"),
    )


def unit_prices(value: object, where: Where, field: str) -> dict[str, int]:
    """{"unit name": "USD per unit", ...} as nanodollars per unit."""
    obj = as_object(value, where, field)
    return {
        name(unit, where, f"{field}.{unit}"): usd_nanos(amount, where, f"{field}.{unit}")
        for unit, amount in obj.items()
    }


def name_list(value: object, where: Where, field: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise where.error(f"must be a list of strings, got {_kind(value)}", field)
    names = tuple(name(item, where, f"{field}[{i}]") for i, item in enumerate(value))
    if len(set(names)) != len(names):
        raise where.error("has duplicates", field)
    return names


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value!r}" if value.strip() else "an empty string"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def read_json_file(path: Path, what: str) -> object:
    """A catalog file's JSON (`what` names the file in errors: "catalog", "data catalog")."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the {what} file ({exc.strerror})") from exc
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CatalogError(f"{path}: not valid JSON ({exc})") from exc


def file_header(
    data: object, where: Where, top_keys: Iterable[str], default_keys: Iterable[str]
) -> tuple[JsonObject, JsonObject, bool]:
    """A catalog file's top object checked (only `top_keys`, version 1), its `defaults` (only
    `default_keys`) and its `replace_defaults` flag."""
    top = as_object(data, where)
    check_keys(top, top_keys, where)
    if top.get("version", 1) != 1:
        raise where.error(f"unsupported version {top['version']!r} (expected 1)", "version")
    defaults = as_object(top.get("defaults", {}), where, "defaults")
    check_keys(defaults, default_keys, where, prefix="defaults.")
    replace = top.get("replace_defaults", False)
    if not isinstance(replace, bool):
        raise where.error("must be true or false", "replace_defaults")
    return top, defaults, replace
