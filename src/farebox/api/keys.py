"""GET/POST /keys and GET/PATCH/DELETE /keys/{id}, authenticated by x-credit-id (PPQ's shapes)."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.requests import read_json
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.api.wire.accounts import KeyCreate, KeyListQuery, KeyPatch
from farebox.api.wire.validate import validate
from farebox.isotime import iso_utc as iso
from farebox.keys.store import ApiKey, KeyStore
from farebox.money import nanos_to_usd


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
        "rpm_limit": key.rpm_limit,
        "tpm_limit": key.tpm_limit,
        "allowed_models": None if key.allowed_models is None else list(key.allowed_models),
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
        query = validate(KeyListQuery, request.query_params)
        show = bool(query.show_key)
        await services.ledger.flush()
        keys = await store.list(account_id, bool(query.include_disabled))
        return JSONResponse(
            {"status": "success", "data": [key_payload(k, store, show) for k in keys]}
        )

    async def create_key(request: Request) -> Response:
        account_id = await account(request)
        new = validate(KeyCreate, await read_json(request, limit))
        key, raw = await store.create(
            account_id,
            new.name,
            new.usage_limit_usd,
            new.reset_period,
            new.expire_at,
            rpm_limit=new.rpm_limit,
            tpm_limit=new.tpm_limit,
            allowed_models=new.allowed_models,
        )
        data = key_payload(key, store, show_key=False)
        data["api_key"] = raw
        return JSONResponse({"status": "success", "data": data}, status_code=201)

    async def get_key(request: Request) -> Response:
        account_id = await account(request)
        show = bool(validate(KeyListQuery, request.query_params).show_key)
        await services.ledger.flush()
        key = await store.get(account_id, request.path_params["key_id"])
        return JSONResponse({"status": "success", "data": key_payload(key, store, show)})

    async def patch_key(request: Request) -> Response:
        account_id = await account(request)
        changes = validate(KeyPatch, await read_json(request, limit)).changes()
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
