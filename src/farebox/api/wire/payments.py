"""Top-ups, history and the operator's listings: query strings and bodies."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, WithJsonSchema

from farebox.api.wire.types import Amount, Body, Query, QueryFlag

FilterText = Annotated[str, StringConstraints(max_length=200)]


class TopupCreate(Body):
    """POST /topup/create/{method}. The amount is exact (JSON numbers are read as decimals)."""

    amount: Amount = None
    currency: Annotated[Any, WithJsonSchema({"type": "string", "enum": ["SATS", "BTC", "USD"]})] = (
        None
    )


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


class HistoryQuery(Query):
    """GET /queries/history (PPQ's filters and pagination)."""

    credit_id: str | None = Field(None, description="PPQ's form; prefer the x-credit-id header.")
    api_key: str | None = Field(None, description="With a credit_id: one key's history.")
    all_keys: QueryFlag = None
    page: Annotated[str | None, WithJsonSchema({"type": "integer", "minimum": 1})] = None
    page_count: Annotated[
        str | None, WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 100})
    ] = None
    start_date: Annotated[str | None, WithJsonSchema({"type": "string", "format": "date"})] = None
    end_date: Annotated[str | None, WithJsonSchema({"type": "string", "format": "date"})] = None
    model: FilterText | None = None
    query_source: FilterText | None = None
    query_type: FilterText | None = None


class HistoryPage(BaseModel):
    status: Literal["success"]
    data: list[dict[str, Any]]
    pagination: dict[str, int]


class AdminListQuery(Query):
    account_id: str | None = None
    credit_id: str | None = None
    status: str | None = None
    limit: Annotated[
        str | None, WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 1000})
    ] = None


class DevPay(Body):
    bolt11: str


class ModelsQuery(Query):
    type: str | None = Field(None, description="chat, embedding, image, speech, ...")


class Listing(BaseModel):
    model_config = {"extra": "allow"}

    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
