"""Top-ups, history and the operator's listings: query strings and bodies."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from farebox.api.wire.types import (
    AMOUNT_SCHEMA,
    Body,
    FilterText,
    IsoDate,
    Query,
    QueryFlag,
    QueryWhole,
)
from farebox.errors import InvalidRequest
from farebox.history.store import MAX_PAGE_COUNT
from farebox.money import read_decimal


def _decimal(value: Any) -> Decimal | None:
    """A bounded, finite decimal (the one money reader), or None; the currency's own places
    are checked by the top-up service."""
    return None if value is None else read_decimal(value, "amount")


class TopupCreate(Body):
    """POST /topup/create/{method}. The amount is exact (JSON numbers are read as decimals)."""

    model_config = ConfigDict(json_schema_extra={"required": ["amount", "currency"]})

    amount: Annotated[Any, BeforeValidator(_decimal), WithJsonSchema(AMOUNT_SCHEMA)] = None
    currency: Annotated[
        str | None,
        WithJsonSchema({"type": "string", "enum": ["SATS", "BTC", "USD", "sats", "btc", "usd"]}),
    ] = None


class Invoice(BaseModel):
    invoice_id: str
    status: str
    method: str
    amount: Any
    currency: str
    amount_usd: float
    amount_sats: int | None
    payment_request: str | None
    bolt11: str | None
    address: str | None
    payment_uri: str | None
    checkout_url: str | None
    credited_usd: float
    created_at: str | None
    expires_at: str | None
    expires_in: int
    paid_at: str | None


class PaymentMethods(BaseModel):
    status: Literal["success"]
    data: list[dict[str, Any]]


class _ActivityFilters(Query):
    """The filters and page size the history API and the dashboard's activity page share."""

    page_count: Annotated[int, QueryWhole(20, 1, MAX_PAGE_COUNT)] = 20
    start_date: Annotated[float | None, IsoDate(end_of_day=False)] = None
    end_date: Annotated[float | None, IsoDate(end_of_day=True)] = None
    model: FilterText = None
    query_source: FilterText = None
    query_type: FilterText = None


class HistoryQuery(_ActivityFilters):
    """GET /queries/history (PPQ's filters and pagination)."""

    credit_id: str | None = Field(None, description="PPQ's form; prefer the x-credit-id header.")
    api_key: str | None = Field(None, description="With a credit_id: one key's history.")
    all_keys: QueryFlag = None
    page: Annotated[int, QueryWhole(1, 1, 10**9)] = 1


class ActivityQuery(_ActivityFilters):
    """The dashboard's activity filters (the same reading as the history API's)."""

    api_key_id: FilterText = None
    page: Annotated[int, QueryWhole(1, 1, 10**6)] = 1


class HistoryPage(BaseModel):
    status: Literal["success"]
    data: list[dict[str, Any]]
    pagination: dict[str, int]


class AdminListQuery(Query):
    account_id: str | None = None
    credit_id: str | None = None
    status: str | None = None
    limit: Annotated[int, QueryWhole(100, 1, 1000)] = 100


class LossesQuery(Query):
    """GET /admin/losses: the last `days` (0: all time), at most `limit` rows."""

    account_id: str | None = None
    credit_id: str | None = None
    days: Annotated[int, QueryWhole(0, 0, 36_500)] = 0
    limit: Annotated[int, QueryWhole(100, 1, 1000)] = 100


MAX_BOLT11 = 4096


def _bolt11(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_BOLT11:
        raise InvalidRequest('Send {"bolt11": "lnbcrt..."}.', param="bolt11")
    return value


class DevPay(Body):
    model_config = ConfigDict(json_schema_extra={"required": ["bolt11"]})

    bolt11: Annotated[
        str,
        BeforeValidator(_bolt11),
        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_BOLT11}),
    ] = Field(None, validate_default=True)


class ModelsQuery(Query):
    type: str | None = Field(None, description="chat, embedding, image, speech, ...")


class Listing(BaseModel):
    model_config = {"extra": "allow"}

    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
