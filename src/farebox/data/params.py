"""Reading one data call: the endpoint it names and its parameters, each checked and bounded.

Nothing here does I/O or touches money: a request that fails here gets its 400 before any hold,
challenge or upstream call. A POST endpoint reads a JSON object body; a GET endpoint reads the
query string (numbers and booleans parsed, an array as a repeated name). Parameters the endpoint
does not define are refused, so nothing but what the catalog lists ever reaches an upstream.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from farebox.errors import InvalidRequest
from farebox.inputs import parse_json_object

from .model import DataCatalog, Endpoint, Param

MAX_QUERY_ITEMS = 100
MAX_DEPTH = 8
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


@dataclass(frozen=True, slots=True)
class DataCall:
    """A checked call: its endpoint and its parameter values (defaults applied), by name."""

    endpoint: Endpoint
    values: dict[str, Any]

    @property
    def price(self) -> int:
        """What the call costs, in nanodollars (fixed per endpoint)."""
        return self.endpoint.price


def read_call(
    catalog: DataCatalog,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    raw_body: bytes,
) -> DataCall:
    """The checked call for `method path` (under /v1/data); InvalidRequest, NotFound or a 405
    for anything wrong."""
    endpoint = catalog.find(method, path)
    inputs = _from_query(endpoint, query) if method == "GET" else _from_body(raw_body)
    return DataCall(endpoint, check_values(endpoint, inputs))


def check_values(endpoint: Endpoint, inputs: dict[str, Any]) -> dict[str, Any]:
    """Each input checked against its parameter; defaults added; unknown names refused."""
    unknown = sorted(name for name in inputs if endpoint.param(name) is None)
    if unknown:
        known = ", ".join(p.name for p in endpoint.params) or "none"
        shown = unknown[0][:64]
        raise InvalidRequest(
            f"Unknown parameter {shown!r} for {endpoint.method} {endpoint.public_path}. "
            f"Its parameters: {known}.",
            param=shown,
        )
    values: dict[str, Any] = {}
    for param in endpoint.params:
        value = inputs.get(param.name)
        if value is None:
            if param.required:
                raise InvalidRequest(f"{param.name} is required.", param=param.name)
            if param.default is not None:
                values[param.name] = param.default
            continue
        values[param.name] = _check(param, value)
    for group in endpoint.one_of:
        if not any(name in inputs and inputs[name] is not None for name in group):
            raise InvalidRequest(f"Send at least one of {', '.join(group)}.", param=group[0])
    return values


def _from_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of parameters (an empty body: none)."""
    return parse_json_object(raw) if raw.strip() else {}


def _from_query(endpoint: Endpoint, query: Sequence[tuple[str, str]]) -> dict[str, Any]:
    if len(query) > MAX_QUERY_ITEMS:
        raise InvalidRequest(f"Too many query parameters (at most {MAX_QUERY_ITEMS}).")
    inputs: dict[str, Any] = {}
    for name, text in query:
        param = endpoint.param(name)
        if param is None:
            inputs[name] = text  # refused as unknown by check_values
        elif param.type == "array":
            inputs.setdefault(name, []).append(_scalar_from_text(param, param.items, text))
        elif name in inputs:
            raise InvalidRequest(f"{name} is given more than once.", param=name)
        else:
            inputs[name] = _scalar_from_text(param, param.type, text)
    return inputs


def _scalar_from_text(param: Param, kind: str, text: str) -> Any:
    """A query-string value as the parameter's type (left as text when it does not parse, so
    the type check names the problem)."""
    if kind == "boolean":
        lowered = text.lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else text
    if kind == "integer" and text.isascii() and len(text) <= 18:
        digits = text[1:] if text.startswith("-") else text
        return int(text) if digits.isdigit() else text
    if kind == "number" and text.isascii() and len(text) <= 32:
        try:
            return float(text)
        except ValueError:
            return text
    return text


def _check(param: Param, value: Any) -> Any:
    """`value` if it fits the parameter (with a captured pattern group in its place)."""
    if param.type == "array":
        if not isinstance(value, list):
            raise InvalidRequest(f"{param.name} must be an array.", param=param.name)
        if not param.min_items <= len(value) <= param.max_items:
            raise InvalidRequest(
                f"{param.name} must have {param.min_items} to {param.max_items} items.",
                param=param.name,
            )
        return [
            _scalar(param, param.items, item, f"{param.name}[{i}]") for i, item in enumerate(value)
        ]
    if param.type == "object":
        return _object(param, value)
    return _scalar(param, param.type, value, param.name)


def _scalar(param: Param, kind: str, value: Any, label: str) -> Any:
    if kind in ("string", "url"):
        return _string(param, kind, value, label)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidRequest(f"{label} must be true or false.", param=param.name)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"{label} must be a number.", param=param.name)
    if kind == "integer" and not isinstance(value, int):
        raise InvalidRequest(f"{label} must be a whole number.", param=param.name)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidRequest(f"{label} must be a finite number.", param=param.name)
    low = -math.inf if param.minimum is None else param.minimum
    high = math.inf if param.maximum is None else param.maximum
    if not low <= value <= high:
        raise InvalidRequest(
            f"{label} must be between {_show(param.minimum)} and {_show(param.maximum)}.",
            param=param.name,
        )
    if param.enum and value not in param.enum:
        raise InvalidRequest(f"{label} must be one of {_choices(param)}.", param=param.name)
    return value


def _string(param: Param, kind: str, value: Any, label: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{label} must be a string.", param=param.name)
    if not value.strip():
        raise InvalidRequest(f"{label} must not be empty.", param=param.name)
    if len(value) > param.max_length:
        raise InvalidRequest(
            f"{label} is longer than {param.max_length} characters.", param=param.name
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidRequest(f"{label} must not contain control characters.", param=param.name)
    if kind == "url":
        _check_url(value, label, param.name)
    if param.enum and value not in param.enum:
        raise InvalidRequest(f"{label} must be one of {_choices(param)}.", param=param.name)
    if param.pattern is not None:
        match = param.pattern.fullmatch(value)
        if match is None:
            raise InvalidRequest(f"{label} has the wrong format.", param=param.name)
        if param.capture:
            return str(match.group(1))
    return value


def _check_url(value: str, label: str, name: str) -> None:
    """An absolute http(s) URL with a host. It is passed to the provider, never fetched here."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not host or " " in value:
        raise InvalidRequest(f"{label} must be an http:// or https:// URL.", param=name)


def _object(param: Param, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"{param.name} must be an object.", param=param.name)
    if _depth(value, 0) > MAX_DEPTH:
        raise InvalidRequest(f"{param.name} is nested too deeply.", param=param.name)
    if len(orjson.dumps(value)) > param.max_bytes:
        raise InvalidRequest(
            f"{param.name} is larger than {param.max_bytes} bytes as JSON.", param=param.name
        )
    return value


def _depth(value: Any, level: int) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _show(bound: float | None) -> str:
    if bound is None:
        return "any"
    return str(int(bound)) if bound == int(bound) else str(bound)


def _choices(param: Param) -> str:
    return ", ".join(str(v) for v in param.enum)
