"""Field types shared by the wire models: how amounts, flags and ids look on the wire."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo, WithJsonSchema

from farebox.errors import InvalidRequest
from farebox.money import MAX_AMOUNT_CHARS

AMOUNT_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number"},
        {
            "type": "string",
            "maxLength": MAX_AMOUNT_CHARS,
            "pattern": r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,6})?$",
        },
    ],
    "description": 'An exact decimal amount: a JSON number or decimal text such as "5" or '
    f'"0.25" (at most {MAX_AMOUNT_CHARS} characters; never a float\'s rounding).',
}


class Body(BaseModel):
    """A JSON request body: unknown fields are ignored unless a model says otherwise."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=False)


class StrictBody(Body):
    """A body whose unknown fields are refused (400 `Unknown field(s): ...`)."""

    model_config = ConfigDict(extra="forbid")


class PassThroughBody(Body):
    """A body we forward: only the fields we read are validated, the rest pass unchanged."""

    model_config = ConfigDict(extra="allow")


class Query(BaseModel):
    """Query-string values (all text on the wire); unknown parameters are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def _flag(value: Any, info: ValidationInfo) -> bool | None:
    if value is None or value == "" or isinstance(value, bool):
        return value if isinstance(value, bool) else None
    lowered = str(value).lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    name = info.field_name or "value"
    raise InvalidRequest(f"{name} must be true or false", param=name)


QueryFlag = Annotated[
    bool | None,
    BeforeValidator(_flag),
    WithJsonSchema({"type": "boolean", "description": "true/false (also 1/0, yes/no)"}),
]
"""A query flag: true/1/yes or false/0/no; empty or absent means the default."""

Amount = Annotated[Any, WithJsonSchema(AMOUNT_SCHEMA)]
"""An amount read later by the one money reader (farebox/money.py) in its own unit."""

Id = Annotated[str, WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 128})]
