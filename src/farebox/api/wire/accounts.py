"""Accounts, credits, keys, grants and NWC auto top-up: requests and answers (PPQ's shapes)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, InstanceOf, WithJsonSchema

from farebox.api.wire.types import AMOUNT_SCHEMA, Amount, Body, Query, QueryFlag, StrictBody
from farebox.errors import InvalidRequest
from farebox.keys.periods import RESET_PERIODS
from farebox.keys.store import (
    NAME_MAX,
    RPM_LIMIT_MAX,
    TPM_LIMIT_MAX,
    parse_expire_at,
    parse_limit,
    parse_name,
    parse_reset_period,
    parse_rpm_limit,
    parse_tpm_limit,
)
from farebox.limits.scopes import MAX_ENTRIES, MAX_ENTRY_CHARS, parse_allowed_models
from farebox.money import read_usd
from farebox.nwc.uri import MAX_LENGTH as NWC_MAX_LENGTH
from farebox.nwc.uri import NwcUri, parse_nwc_url

KeyName = Annotated[
    str,
    BeforeValidator(parse_name),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": NAME_MAX}),
]
UsageLimit = Annotated[
    int | None,
    BeforeValidator(parse_limit),
    WithJsonSchema(
        {
            "anyOf": [*AMOUNT_SCHEMA["anyOf"], {"type": "null"}],
            "description": "A spending limit in USD (at least 0.01), or null for none.",
        }
    ),
]
ResetPeriod = Annotated[
    str | None,
    BeforeValidator(parse_reset_period),
    WithJsonSchema({"enum": [*sorted(RESET_PERIODS), None]}),
]
ExpireAt = Annotated[
    float | None,
    BeforeValidator(lambda value: parse_expire_at(value, time.time())),
    WithJsonSchema(
        {"type": ["string", "null"], "format": "date-time", "description": "In the future."}
    ),
]


def _per_minute_schema(maximum: int, what: str) -> dict[str, Any]:
    """The JSON schema of a key's rpm_limit or tpm_limit: 1 to `maximum`, or null for none."""
    return {
        "anyOf": [{"type": "integer", "minimum": 1, "maximum": maximum}, {"type": "null"}],
        "description": f"{what} (429 past it), or null for none.",
    }


RpmLimit = Annotated[
    int | None,
    BeforeValidator(parse_rpm_limit),
    WithJsonSchema(_per_minute_schema(RPM_LIMIT_MAX, "Requests per minute")),
]
TpmLimit = Annotated[
    int | None,
    BeforeValidator(parse_tpm_limit),
    WithJsonSchema(_per_minute_schema(TPM_LIMIT_MAX, "Tokens per minute, counted at settlement")),
]
AllowedModels = Annotated[
    tuple[str, ...] | None,
    BeforeValidator(parse_allowed_models),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1, "maxLength": MAX_ENTRY_CHARS},
                    "minItems": 1,
                    "maxItems": MAX_ENTRIES,
                },
                {"type": "null"},
            ],
            "description": "Model ids or fnmatch patterns the key may use (403 for others), "
            "or null for every model.",
        }
    ),
]


class KeyCreate(StrictBody):
    """POST /keys. The limit is read as nanodollars, the expiry as a Unix time."""

    name: KeyName
    usage_limit_usd: UsageLimit = None
    reset_period: ResetPeriod = None
    expire_at: ExpireAt = None
    rpm_limit: RpmLimit = None
    tpm_limit: TpmLimit = None
    allowed_models: AllowedModels = None


class KeyPatch(StrictBody):
    """PATCH /keys/{key_id}: only the fields sent change (null clears a limit or expiry)."""

    name: KeyName = None  # type: ignore[assignment]  # a sent null is refused by parse_name
    usage_limit_usd: UsageLimit = None
    reset_period: ResetPeriod = None
    expire_at: ExpireAt = None
    rpm_limit: RpmLimit = None
    tpm_limit: TpmLimit = None
    allowed_models: AllowedModels = None

    def changes(self) -> dict[str, Any]:
        """The store's names for the fields that were sent."""
        names = {"usage_limit_usd": "usage_limit"}
        return {names.get(f, f): getattr(self, f) for f in self.model_fields_set}


class KeyListQuery(Query):
    include_disabled: QueryFlag = None
    show_key: QueryFlag = None


class KeyView(BaseModel):
    """A key as GET /keys shows it (`api_key` only with show_key=true, or on creation)."""

    id: str = Field(alias="_id")
    name: str
    key_hint: str
    usage_limit_usd: float | None
    current_period_usage_usd: float
    total_usage_all_time_usd: float
    reserved_usd: float
    reset_period: Literal["daily", "weekly", "monthly"] | None
    reset_at: str | None
    expire_at: str | None
    created_at: str | None
    updated_at: str | None
    deleted_at: str | None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    allowed_models: list[str] | None = None
    api_key: str | None = None


class KeyAnswer(BaseModel):
    status: Literal["success"]
    data: KeyView


class KeyList(BaseModel):
    status: Literal["success"]
    data: list[KeyView]


class Done(BaseModel):
    status: Literal["success"]
    message: str | None = None


class NewAccount(BaseModel):
    credit_id: str = Field(description="The account's password: shown once. Keep it secret.")
    account_id: str = Field(description="The account's public id (acct_…).")
    api_key: str
    api_key_id: str


class CreditsBalanceBody(Body):
    """POST /credits/balance: a credit_id, or no body and an API key."""

    credit_id: str | None = None


class Balance(BaseModel):
    account_id: str
    balance: float
    reserved: float
    available: float
    credit_id: str | None = Field(None, description="Only when the caller sent it.")
    key: KeyView | None = Field(None, description="The calling key, when an API key was used.")


class Rotated(BaseModel):
    status: Literal["success"]
    credit_id: str
    account_id: str


MAX_GRANT_NANOS = 1_000_000 * 1_000_000_000  # $1M per grant, a typo guard


def parse_grant_amount(value: object) -> int:
    nanos = read_usd(value, "amount_usd")
    if nanos <= 0:
        raise InvalidRequest("amount_usd must be greater than zero", param="amount_usd")
    if nanos > MAX_GRANT_NANOS:
        raise InvalidRequest("amount_usd is larger than one grant may be", param="amount_usd")
    return nanos


def _idempotency_key(value: Any) -> Any:
    if value is not None and (
        not isinstance(value, str) or not value.strip() or len(value) > MAX_IDEMPOTENCY_KEY
    ):
        # An empty key would silently grant again on every retry: refuse it.
        raise InvalidRequest(
            f"idempotency_key must be a non-empty string of at most {MAX_IDEMPOTENCY_KEY} "
            "characters (for example the invoice or ticket id), or left out",
            param="idempotency_key",
        )
    return value


MAX_IDEMPOTENCY_KEY = 200


class AdminGrant(Body):
    """POST /admin/credits: name the account by account_id or credit_id, exactly one."""

    model_config = ConfigDict(json_schema_extra={"required": ["amount_usd"]})

    amount_usd: Annotated[
        int,
        BeforeValidator(parse_grant_amount),
        WithJsonSchema({**AMOUNT_SCHEMA, "description": "USD, at most 1,000,000 per grant."}),
    ] = Field(None, validate_default=True)  # None: a 400 from the reader
    idempotency_key: Annotated[
        str | None,
        BeforeValidator(_idempotency_key),
        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY}),
    ] = None
    account_id: str | None = None
    credit_id: str | None = None


class Granted(BaseModel):
    status: Literal["success"]
    transfer_id: str
    account_id: str
    balance: float
    reserved: float
    available: float


class NwcConnect(Body):
    """POST /nwc-auto-topup/connect (amounts in whole cents of USD)."""

    nwc_url: Annotated[
        InstanceOf[NwcUri],
        BeforeValidator(parse_nwc_url),
        WithJsonSchema(
            {
                "type": "string",
                "maxLength": NWC_MAX_LENGTH,
                "pattern": "^nostr\\+walletconnect://",
                "description": "nostr+walletconnect://<wallet pubkey>?relay=wss://…&secret=…",
            }
        ),
    ]
    threshold_usd: Amount = None
    topup_amount_usd: Amount = None


class NwcStatus(BaseModel):
    status: Literal["success"]
    connected: bool
    wallet_pubkey: str | None = None
    relays: list[str] | None = None
    threshold_usd: float | None = None
    topup_amount_usd: float | None = None
    attempts: list[dict[str, Any]] | None = None
