"""Every public operation: its route, what it reads, what it answers and who may call it.

Each entry names the wire model the route validates with, so the schema is generated from the
same classes (api/wire/); tests/api/test_openapi.py fails when a route of the app has no entry
here, or an entry no route.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from farebox.api.wire import accounts as acc
from farebox.api.wire import chat, media
from farebox.api.wire import payments as pay

Auth = Literal["key", "pay", "credit", "key_or_credit", "admin", "session", "console", "none"]
BodyKind = Literal["json", "multipart", "form", "bytes"]

SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "key": [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}],
    "pay": [
        {"ApiKeyBearer": []},
        {"ApiKeyHeader": []},
        {"L402": []},
        {"Payment": []},
        {"Cashu": []},
    ],
    "credit": [{"CreditId": []}],
    "key_or_credit": [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}, {"CreditId": []}],
    "admin": [{"AdminToken": []}],
    "session": [{"SessionCookie": []}],
    "console": [{"ConsoleCookie": []}],
    "none": [],
}


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    """The Starlette route path, e.g. `/keys/{key_id}` or `/v1/data/{path:path}`."""
    summary: str
    tag: str
    auth: Auth = "none"
    body: type[BaseModel] | None = None
    body_kind: BodyKind = "json"
    body_required: bool = True
    query: type[BaseModel] | None = None
    answer: type[BaseModel] | None = None
    status: int = 200
    media_type: str = "application/json"
    errors: tuple[int, ...] = (400, 401, 404)
    description: str = ""
    path_doc: dict[str, str] = field(default_factory=dict)


def _aliases(op: Op, *paths: str) -> list[Op]:
    """`op` and the same operation under older paths (PPQ's, without /v1)."""
    return [op] + [
        Op(**{**op.__dict__, "path": p, "summary": f"{op.summary} (alias of {op.path})"})
        for p in paths
    ]


PAID = (400, 401, 402, 404, 429, 502, 503, 504)
HTML = "text/html"

OPERATIONS: list[Op] = [
    # --- OpenAI and Anthropic surfaces
    *_aliases(
        Op(
            "POST",
            "/v1/chat/completions",
            "Chat completion (OpenAI-compatible; stream with SSE)",
            "chat",
            "pay",
            chat.ChatCompletionRequest,
            answer=chat.ChatCompletion,
            errors=PAID,
            description="Unknown fields pass through to the upstream. With `stream: true` the "
            "answer is `text/event-stream`. The cost is in `x-farebox-cost`.",
        ),
        "/chat/completions",
    ),
    Op(
        "POST",
        "/v1/messages",
        "Anthropic Messages (native or translated)",
        "chat",
        "key",
        chat.MessagesRequest,
        answer=chat.AnthropicAnswer,
        errors=PAID,
        description="Also authenticated by `x-api-key`. Errors use Anthropic's envelope "
        '(`{"type": "error", "error": {...}}`).',
    ),
    Op(
        "POST",
        "/v1/messages/count_tokens",
        "Count a Messages request's input tokens (free)",
        "chat",
        "key",
        chat.CountTokensRequest,
    ),
    *_aliases(
        Op(
            "GET",
            "/v1/models",
            "List models with prices",
            "models",
            query=pay.ModelsQuery,
            answer=pay.Listing,
        ),
        "/models",
    ),
    *_aliases(
        Op("GET", "/v1/models/{model_id:path}", "One model", "models", errors=(404,)),
        "/models/{model_id:path}",
    ),
    # --- media
    *_aliases(
        Op(
            "POST",
            "/v1/embeddings",
            "Embeddings",
            "media",
            "key",
            media.EmbeddingsRequest,
            answer=media.EmbeddingsAnswer,
            errors=PAID,
        ),
        "/embeddings",
    ),
    *_aliases(
        Op(
            "POST",
            "/v1/images/generations",
            "Generate images (pay per request without a key)",
            "media",
            "pay",
            media.ImageGenerationRequest,
            answer=media.ImagesAnswer,
            errors=PAID,
        ),
        "/images/generations",
    ),
    *_aliases(
        Op(
            "POST",
            "/v1/images/edits",
            "Edit an image (multipart)",
            "media",
            "pay",
            media.ImageEditForm,
            body_kind="multipart",
            answer=media.ImagesAnswer,
            errors=(*PAID, 413),
        ),
        "/images/edits",
    ),
    *_aliases(
        Op(
            "POST",
            "/v1/audio/speech",
            "Text to speech (the audio is streamed back)",
            "media",
            "key",
            media.SpeechRequest,
            media_type="audio/mpeg",
            errors=PAID,
        ),
        "/audio/speech",
    ),
    *_aliases(
        Op(
            "POST",
            "/v1/audio/transcriptions",
            "Speech to text (multipart)",
            "media",
            "key",
            media.TranscriptionForm,
            body_kind="multipart",
            errors=(*PAID, 413),
        ),
        "/audio/transcriptions",
    ),
    *_aliases(
        Op("GET", "/v1/audio/models", "Speech and transcription models", "media", errors=()),
        "/audio/models",
    ),
    *_aliases(
        Op("GET", "/v1/audio/voices", "Voices of the speech models", "media", errors=()),
        "/audio/voices",
    ),
    *_aliases(
        Op(
            "POST",
            "/v1/videos",
            "Submit a video job (charged when it ends)",
            "media",
            "pay",
            media.VideoRequest,
            answer=media.VideoJob,
            status=202,
            errors=PAID,
        ),
        "/videos",
    ),
    *_aliases(
        Op(
            "GET",
            "/v1/videos/{job_id}",
            "A video job: 202 while running, 200 when done",
            "media",
            "key",
            query=media.SignedQuery,
            answer=media.VideoJob,
            description="With the signed `status_url` (`sig`, `exp`) no API key is needed.",
        ),
        "/videos/{job_id}",
    ),
    Op(
        "GET",
        "/v1/media/{gen_id}/{n}",
        "A stored generation file, behind its signature",
        "media",
        query=media.SignedQuery,
        media_type="application/octet-stream",
        errors=(403, 404),
    ),
    Op(
        "HEAD",
        "/v1/media/{gen_id}/{n}",
        "A stored generation file's headers",
        "media",
        query=media.SignedQuery,
        media_type="application/octet-stream",
        errors=(403, 404),
    ),
    # --- data
    Op("GET", "/v1/data/endpoints", "Data endpoints and their prices", "data", errors=()),
    Op(
        "GET",
        "/v1/data/{path:path}",
        "Call a data endpoint (its parameters: GET /v1/data/endpoints)",
        "data",
        "pay",
        errors=PAID,
    ),
    Op(
        "POST",
        "/v1/data/{path:path}",
        "Call a data endpoint with a JSON body",
        "data",
        "pay",
        body_kind="bytes",
        body_required=False,
        errors=(*PAID, 413),
    ),
    # --- private (end-to-end encrypted) models
    Op(
        "POST",
        "/private/v1/chat/completions",
        "Relay an EHBP-encrypted chat request to an enclave",
        "private",
        "key",
        body_kind="bytes",
        media_type="application/octet-stream",
        errors=PAID,
    ),
    Op(
        "GET",
        "/private/v1/preflight",
        "Check a private request before sending it",
        "private",
        "key",
        errors=PAID,
    ),
    Op("GET", "/private/attestation", "An enclave's attestation", "private"),
    Op("GET", "/.well-known/hpke-keys", "The enclave's HPKE keys", "private"),
    Op("GET", "/private/.well-known/hpke-keys", "The enclave's HPKE keys", "private"),
    # --- accounts, keys, history
    Op(
        "POST",
        "/accounts/create",
        "Create an account (credit_id, account id, first API key)",
        "accounts",
        answer=acc.NewAccount,
        status=201,
        errors=(429,),
    ),
    Op(
        "POST",
        "/credits/balance",
        "Balance: by credit_id in the body, or by API key",
        "accounts",
        "key",
        acc.CreditsBalanceBody,
        body_required=False,
        answer=acc.Balance,
    ),
    Op(
        "POST",
        "/credits/rotate",
        "Issue a new credit_id (the old one stops working at once)",
        "accounts",
        "credit",
        answer=acc.Rotated,
    ),
    Op("GET", "/keys", "List keys", "keys", "credit", query=acc.KeyListQuery, answer=acc.KeyList),
    Op(
        "POST",
        "/keys",
        "Create a key",
        "keys",
        "credit",
        acc.KeyCreate,
        answer=acc.KeyAnswer,
        status=201,
    ),
    Op(
        "GET",
        "/keys/{key_id}",
        "One key",
        "keys",
        "credit",
        query=acc.KeyListQuery,
        answer=acc.KeyAnswer,
    ),
    Op(
        "PATCH",
        "/keys/{key_id}",
        "Change a key",
        "keys",
        "credit",
        acc.KeyPatch,
        answer=acc.KeyAnswer,
    ),
    Op("DELETE", "/keys/{key_id}", "Revoke a key", "keys", "credit", answer=acc.Done),
    Op(
        "GET",
        "/queries/history",
        "Query history (by API key, or by x-credit-id)",
        "accounts",
        "key_or_credit",
        query=pay.HistoryQuery,
        answer=pay.HistoryPage,
    ),
    # --- top-ups
    Op(
        "POST",
        "/topup/create/{method}",
        "Create a top-up invoice",
        "topups",
        "key_or_credit",
        pay.TopupCreate,
        answer=pay.Invoice,
        status=201,
        errors=(400, 401, 404, 413, 503),
        path_doc={"method": "btc-lightning, btc, ltc, lbtc or xmr"},
    ),
    Op(
        "GET",
        "/topup/status/{invoice_id}",
        "A top-up invoice",
        "topups",
        "key_or_credit",
        answer=pay.Invoice,
    ),
    Op(
        "GET",
        "/topup/payment-methods",
        "Top-up methods",
        "topups",
        answer=pay.PaymentMethods,
        errors=(),
    ),
    Op(
        "POST",
        "/topup/webhook/{backend}",
        "A payment backend's webhook (signed by the backend)",
        "topups",
        body_kind="bytes",
        errors=(400, 401, 404, 413),
    ),
    Op(
        "POST",
        "/nwc-auto-topup/connect",
        "Connect a wallet for auto top-up (NWC)",
        "topups",
        "credit",
        acc.NwcConnect,
        answer=acc.NwcStatus,
        errors=(400, 401, 503),
    ),
    Op(
        "GET",
        "/nwc-auto-topup",
        "The auto top-up connection",
        "topups",
        "credit",
        answer=acc.NwcStatus,
    ),
    Op(
        "DELETE",
        "/nwc-auto-topup/connection",
        "Disconnect auto top-up",
        "topups",
        "credit",
        answer=acc.NwcStatus,
    ),
    Op(
        "GET",
        "/v1/cashu/change/{receipt_id}",
        "A Cashu payer's change, fetched again",
        "topups",
        errors=(404, 409),
    ),
    # --- operator
    Op(
        "POST",
        "/admin/credits",
        "Grant credit to an account",
        "admin",
        "admin",
        acc.AdminGrant,
        answer=acc.Granted,
        errors=(400, 401, 403, 404),
    ),
    Op(
        "GET",
        "/admin/topups",
        "Top-up invoices",
        "admin",
        "admin",
        query=pay.AdminListQuery,
        errors=(400, 401, 403),
    ),
    Op("GET", "/admin/routes", "Upstream route health", "admin", "admin", errors=(401, 403)),
    Op(
        "GET",
        "/admin/losses",
        "Operator losses (usage above what was charged)",
        "admin",
        "admin",
        query=pay.LossesQuery,
        errors=(400, 401, 403),
    ),
    Op(
        "POST",
        "/admin/dev/pay",
        "The dev wallet pays one of its invoices (demo only)",
        "admin",
        "admin",
        pay.DevPay,
        errors=(400, 401, 403, 404),
    ),
    Op("GET", "/healthz", "Liveness", "health", errors=()),
    Op("GET", "/readyz", "Readiness (the database answers)", "health", errors=(503,)),
    Op("GET", "/openapi.json", "This schema", "health", errors=()),
    Op(
        "GET",
        "/metrics",
        "Prometheus metrics (the admin token, unless FAREBOX_METRICS_PUBLIC=true)",
        "health",
        auth="admin",
        media_type="text/plain",
        errors=(401, 403),
    ),
    Op("GET", "/docs", "This schema, as a page", "health", media_type=HTML, errors=()),
]


def _page(method: str, path: str, summary: str, auth: Auth, tag: str = "dashboard") -> Op:
    """A server-rendered dashboard page or form post (HTML, CSRF-protected forms)."""
    body: BodyKind = "form" if method == "POST" else "json"
    return Op(
        method,
        path,
        summary,
        tag,
        auth,
        body_kind=body,
        body_required=False,
        media_type=HTML,
        errors=(400, 403, 429),
    )


PAGES: list[Op] = [
    _page("GET", "/", "Customer overview (or sign-in)", "none"),
    _page("GET", "/dashboard/static/{name}", "Shipped assets (CSS, JS)", "none"),
    _page("GET", "/dashboard/balance", "Balance fragment", "session"),
    _page("GET", "/dashboard/recent", "Recent queries fragment", "session"),
    _page("POST", "/dashboard/sign-in", "Sign in with a credit_id", "none"),
    _page("POST", "/dashboard/sign-up", "Create an account", "none"),
    _page("POST", "/dashboard/sign-out", "Sign out", "session"),
    _page("GET", "/dashboard/activity", "Activity", "session"),
    _page("GET", "/dashboard/activity/rows", "Activity rows fragment", "session"),
    _page("GET", "/dashboard/activity.csv", "Activity as CSV", "session"),
    _page("GET", "/dashboard/keys", "Keys", "session"),
    _page("POST", "/dashboard/keys", "Create a key", "session"),
    _page("POST", "/dashboard/keys/{key_id}", "Change a key", "session"),
    _page("POST", "/dashboard/keys/{key_id}/revoke", "Revoke a key", "session"),
    _page("GET", "/dashboard/topup", "Top up", "session"),
    _page("POST", "/dashboard/topup", "Create a top-up invoice", "session"),
    _page("GET", "/dashboard/topup/{invoice_id}", "An invoice", "session"),
    _page("GET", "/dashboard/topup/{invoice_id}/status", "An invoice's status fragment", "session"),
    _page("POST", "/dashboard/nwc", "Connect auto top-up", "session"),
    _page("POST", "/dashboard/nwc/disconnect", "Disconnect auto top-up", "session"),
    _page("GET", "/dashboard/models", "Models", "session"),
    _page("GET", "/dashboard/models/table", "Models table fragment", "session"),
    _page("GET", "/dashboard/playground", "Playground", "session"),
    _page("POST", "/dashboard/playground/chat", "Playground chat (streams)", "session"),
    _page("GET", "/console", "Operator console: revenue", "none", "console"),
    _page("POST", "/console/sign-in", "Operator sign-in (admin token)", "none", "console"),
    _page("POST", "/console/sign-out", "Operator sign-out", "console", "console"),
    _page("GET", "/console/accounts", "Accounts", "console", "console"),
    _page("POST", "/console/accounts/grant", "Grant credit", "console", "console"),
    _page("GET", "/console/topups", "Top-ups", "console", "console"),
    _page("GET", "/console/routes", "Route health", "console", "console"),
    _page("GET", "/console/ledger", "Ledger", "console", "console"),
    _page("POST", "/console/ledger/check", "Run the ledger check", "console", "console"),
]

ALL: list[Op] = [*OPERATIONS, *PAGES]
