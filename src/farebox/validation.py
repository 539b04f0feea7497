"""Validating a parsed body or a query string against a pydantic model, with our 400s.

A failed validation becomes one `InvalidRequest` naming the first field at fault (`param`, as
`messages[0].role`) in a sentence that never repeats the customer's value. Validators may raise
our own errors (a `MoneyError`, an `InvalidRequest` from a domain reader): those pass through
unchanged, with their own message and param.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from farebox.errors import ECHO_CHARS, FareboxError, InvalidRequest

M = TypeVar("M", bound=BaseModel)
MAX_NAMED = 5  # unknown fields named in one error

_KINDS = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
}


def param_of(loc: tuple[int | str, ...], data: Any = None, missing: bool = False) -> str:
    """A pydantic location as the dotted/indexed name a customer wrote: `messages[0].role`.

    Below the top-level field, a part is kept only where `data` (what was validated) has it:
    pydantic's locations also name the member of a union that failed (`int`, `str`...)."""
    text = ""
    current = data
    for depth, part in enumerate(loc):
        present = (isinstance(current, Mapping) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        )
        missing_field = missing and depth == len(loc) - 1 and isinstance(current, Mapping)
        if depth > 0 and data is not None and not present and not missing_field:
            continue
        current = current[part] if present else None
        if isinstance(part, int):
            text += f"[{part}]"
        elif not text:
            text = part
        else:
            text += f".{part}"
    return text or "body"


def _message(error: ErrorDetails, param: str) -> str:
    kind = error["type"]
    if kind == "missing":
        return f"{param} is required"
    if kind in _KINDS:
        return f"{param} must be {_KINDS[kind]}"
    if kind == "literal_error":
        expected = (error.get("ctx") or {}).get("expected", "")
        return f"{param} must be one of {expected}"
    if kind == "too_short":
        return f"{param} must not be empty"
    if kind == "string_too_short":
        return f"{param} is too short"
    if kind in ("string_too_long", "too_long"):
        return f"{param} is too long"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{param} is out of range: it {error['msg'].removeprefix('Input ')}"
    # pydantic's own sentence: it describes the expectation, not the value
    return f"{param}: {error['msg']}"


def as_invalid_request(exc: ValidationError, data: Any = None) -> FareboxError:
    """The one error a customer sees for a failed validation of `data`."""
    errors = exc.errors(include_url=False, include_input=False)
    unknown = [param_of(e["loc"], data) for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        names = sorted(name[:ECHO_CHARS] for name in unknown)
        shown = ", ".join(names[:MAX_NAMED]) + (", …" if len(names) > MAX_NAMED else "")
        return InvalidRequest(f"Unknown field(s): {shown}", param=names[0])
    first = errors[0]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, FareboxError):  # a validator's own error (e.g. a MoneyError)
        return cause
    param = param_of(first["loc"], data, missing=first["type"] == "missing")
    return InvalidRequest(_message(first, param), param=param)


def validate(model: type[M], body: Mapping[str, Any]) -> M:
    """`body` (a parsed JSON object or query values) as `model`, or our 400."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise as_invalid_request(exc, body) from None
