"""Field types shared by the wire models: how amounts, flags and ids look on the wire."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import core_schema

from farebox.errors import InvalidRequest
from farebox.inputs import MAX_NUMBER_DIGITS, ascii_whole_number
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


@dataclass(frozen=True)
class QueryWhole:
    """A whole number in a query string (ASCII digits, bounded length) within [low, high];
    absent or empty gives `default`."""

    default: int
    low: int
    high: int

    def read(self, value: Any, info: ValidationInfo) -> int:
        name = info.field_name or "value"
        if value is None or value == "":
            return self.default
        text = str(value)
        number = ascii_whole_number(text.removeprefix("-"), MAX_NUMBER_DIGITS)
        if number is None:
            raise InvalidRequest(f"{name} must be a whole number", param=name)
        number = -number if text.startswith("-") else number
        if not self.low <= number <= self.high:
            raise InvalidRequest(f"{name} must be between {self.low} and {self.high}", param=name)
        return number

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.with_info_before_validator_function(self.read, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> Any:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}


@dataclass(frozen=True)
class IsoDate:
    """PPQ's `start_date` / `end_date`: an ISO 8601 date or time, read as a Unix time (a bare
    end date includes its whole day)."""

    end_of_day: bool

    def read(self, value: Any, info: ValidationInfo) -> float | None:
        name = info.field_name or "date"
        if not value:
            return None
        text = str(value)
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRequest(
                f"{name} must be an ISO 8601 date such as 2026-11-01", param=name
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if self.end_of_day and len(text) <= 10:  # a bare date: include the whole day
            when += timedelta(days=1) - timedelta(microseconds=1)
        return when.timestamp()

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.with_info_before_validator_function(self.read, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> Any:
        return {"type": "string", "description": "ISO 8601, e.g. 2026-11-01"}


def _filter_text(value: Any, info: ValidationInfo) -> str | None:
    name = info.field_name or "value"
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 200 or "\x00" in value:
        raise InvalidRequest(f"{name} is not a valid filter value", param=name)
    return value


FilterText = Annotated[
    str | None,
    BeforeValidator(_filter_text),
    WithJsonSchema({"type": "string", "maxLength": 200}),
]
"""A listing's filter value (a model id, a source): short, no NUL; empty means none."""

Amount = Annotated[Any, WithJsonSchema(AMOUNT_SCHEMA)]
"""An amount read later by the one money reader (farebox/money.py) in its own unit."""

Id = Annotated[str, WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 128})]
