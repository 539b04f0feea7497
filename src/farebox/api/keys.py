"""GET/POST /keys and GET/PATCH/DELETE /keys/{id}, authenticated by x-credit-id (PPQ's shapes)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.requests import query_bool, read_json
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.errors import InvalidRequest
from farebox.keys.store import (
    ApiKey,
    KeyStore,
    parse_expire_at,
    parse_limit,
    parse_name,
    parse_reset_period,
)
from farebox.money import nanos_to_usd

_PATCHABLE = {"name", "usage_limit_usd", "reset_period", "expire_at"}


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def key_payload(key: ApiKey, store: KeyStore, show_key: bool) -> dict[str, Any]:
    now = time.time()
    reset_at = key.reset_at(now)
    data: dict[str, Any] = {
        "_id": key.id,
        "name": key.name,
        "key_hint": key.hint,
        "usage_limit_usd": None if key.usage_limit is None else nanos_to_usd(key.usage_limit),
        "current_period_usage_usd": nanos_to_usd(key.current_period_usage(now)),
        "total_usage_all_time_usd": nanos_to_usd(key.total_posted),
        "reserved_usd": nanos_to_usd(key.period_pending),
        "reset_period": key.reset_period,
        "reset_at": reset_at.isoformat().replace("+00:00", "Z") if reset_at else None,
        "expire_at": iso(key.expire_at),
        "created_at": iso(key.created_at),
        "updated_at": iso(key.updated_at),
        "deleted_at": iso(key.revoked_at),
    }
    if show_key:
        data["api_key"] = store.reveal(key)
    return data


def routes(services: Services) -> list[Route]:
    store = services.keys
    limit = services.settings.max_body_bytes

    async def account(request: Request) -> str:
        return await store.require_account(request.headers.get("x-credit-id"))

    async def list_keys(request: Request) -> Response:
        account_id = await account(request)
        include_disabled = query_bool(request, "include_disabled")
        show = query_bool(request, "show_key")
        await services.ledger.flush()
        keys = await store.list(account_id, include_disabled)
        return JSONResponse(
            {"status": "success", "data": [key_payload(k, store, show) for k in keys]}
        )

    async def create_key(request: Request) -> Response:
        account_id = await account(request)
        body = await read_json(request, limit)
        unknown = set(body) - _PATCHABLE
        if unknown:
            raise InvalidRequest(f"Unknown field(s): {', '.join(sorted(unknown))}")
        key, raw = await store.create(
            account_id,
            parse_name(body.get("name")),
            parse_limit(body.get("usage_limit_usd")),
            parse_reset_period(body.get("reset_period")),
            parse_expire_at(body.get("expire_at"), time.time()),
        )
        data = key_payload(key, store, show_key=False)
        data["api_key"] = raw
        return JSONResponse({"status": "success", "data": data}, status_code=201)

    async def get_key(request: Request) -> Response:
        account_id = await account(request)
        show = query_bool(request, "show_key")
        await services.ledger.flush()
        key = await store.get(account_id, request.path_params["key_id"])
        return JSONResponse({"status": "success", "data": key_payload(key, store, show)})

    async def patch_key(request: Request) -> Response:
        account_id = await account(request)
        body = await read_json(request, limit)
        unknown = set(body) - _PATCHABLE
        if unknown:
            raise InvalidRequest(f"Unknown field(s): {', '.join(sorted(unknown))}")
        changes: dict[str, Any] = {}
        if "name" in body:
            changes["name"] = parse_name(body["name"])
        if "usage_limit_usd" in body:
            changes["usage_limit"] = parse_limit(body["usage_limit_usd"])
        if "reset_period" in body:
            changes["reset_period"] = parse_reset_period(body["reset_period"])
        if "expire_at" in body:
            changes["expire_at"] = parse_expire_at(body["expire_at"], time.time())
        await services.ledger.flush()  # the usage shown includes our own settlements
        key = await store.patch(account_id, request.path_params["key_id"], changes)
        return JSONResponse({"status": "success", "data": key_payload(key, store, False)})

    async def delete_key(request: Request) -> Response:
        account_id = await account(request)
        await store.revoke(account_id, request.path_params["key_id"])
        return JSONResponse({"status": "success", "message": "API key revoked successfully"})

    return [
        Route("/keys", list_keys, methods=["GET"]),
        Route("/keys", create_key, methods=["POST"]),
        Route("/keys/{key_id}", get_key, methods=["GET"]),
        Route("/keys/{key_id}", patch_key, methods=["PATCH"]),
        Route("/keys/{key_id}", delete_key, methods=["DELETE"]),
    ]
