"""Keys: create (name, limit, reset period, expiry; the key shown once), edit, revoke, and each
key's usage against its limit. Validation is the keys API's own (keys/store.py)."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.dashboard import playground_key
from farebox.dashboard.sessions import CUSTOMER, Session
from farebox.dashboard.web import Web
from farebox.errors import FareboxError
from farebox.keys.store import (
    ApiKey,
    parse_expire_at,
    parse_limit,
    parse_name,
    parse_reset_period,
    parse_rpm_limit,
    parse_tpm_limit,
)
from farebox.limits.scopes import parse_allowed_models

PERIODS = (("", "never"), ("daily", "daily"), ("weekly", "weekly"), ("monthly", "monthly"))
EMPTY_FORM = {
    "name": "",
    "usage_limit_usd": "",
    "reset_period": "",
    "expire_at": "",
    "rpm_limit": "",
    "tpm_limit": "",
    "allowed_models": "",
}


def _optional(form: dict[str, str], name: str) -> str | None:
    value = form.get(name, "").strip()
    return value or None


def _whole(form: dict[str, str], name: str) -> int | str | None:
    """A whole-number field as the JSON API would get it (the text itself if it is not one, so
    the same check refuses it with the same message)."""
    value = _optional(form, name)
    if value is None:
        return None
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 20 else value


def _models(form: dict[str, str]) -> list[str] | None:
    """Model ids or patterns, separated by commas or spaces (empty: every model)."""
    text = form.get("allowed_models", "")
    names = [n for n in text.replace(",", " ").split() if n]
    return names or None


def parse_key_form(form: dict[str, str]) -> dict[str, Any]:
    """The form's fields, checked like the JSON API's (an empty field means none)."""
    expire = _optional(form, "expire_at")
    return {
        "name": parse_name(form.get("name", "")),
        "usage_limit": parse_limit(_optional(form, "usage_limit_usd")),
        "reset_period": parse_reset_period(_optional(form, "reset_period")),
        "expire_at": parse_expire_at(expire, time.time()),
        "rpm_limit": parse_rpm_limit(_whole(form, "rpm_limit")),
        "tpm_limit": parse_tpm_limit(_whole(form, "tpm_limit")),
        "allowed_models": parse_allowed_models(_models(form)),
    }


def routes(web: Web) -> list[Route]:
    services = web.services
    store = services.keys

    async def page(
        request: Request,
        session: Session,
        *,
        created: tuple[ApiKey, str] | None = None,
        error: str | None = None,
        form: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        assert session.account_id is not None
        show_all = request.query_params.get("show") == "all"
        await services.ledger.flush()
        keys = await store.list(session.account_id, include_disabled=show_all)
        context = {
            **web.frame(session, "/dashboard/keys", "Keys"),
            "keys": keys,
            "show_all": show_all,
            "now": time.time(),
            "periods": PERIODS,
            "form": {**EMPTY_FORM, **(form or {})},
            "created": created[0] if created else None,
            "created_raw": created[1] if created else None,
            "playground_key_id": await playground_key.key_id(services.db, session.account_id),
            "error": error,
            "notice": _done(request.query_params.get("done")),
        }
        return web.render("keys.html", context, status)

    @web.page(CUSTOMER)
    async def list_keys(request: Request) -> Response:
        return await page(request, await web.require(request, CUSTOMER))

    @web.page(CUSTOMER)
    async def create(request: Request) -> Response:
        session, account_id, form = await web.account_form(request)
        try:
            fields = parse_key_form(form)
            created = await store.create(
                account_id,
                fields["name"],
                fields["usage_limit"],
                fields["reset_period"],
                fields["expire_at"],
                rpm_limit=fields["rpm_limit"],
                tpm_limit=fields["tpm_limit"],
                allowed_models=fields["allowed_models"],
            )
        except FareboxError as exc:
            kept = {name: form.get(name, "")[:200] for name in EMPTY_FORM}
            return await page(request, session, error=exc.message, form=kept, status=exc.status)
        return await page(request, session, created=created, status=201)

    @web.page(CUSTOMER)
    async def edit(request: Request) -> Response:
        session, account_id, form = await web.account_form(request)
        try:
            fields = parse_key_form(form)
            await services.ledger.flush()
            await store.patch(account_id, request.path_params["key_id"], fields)
        except FareboxError as exc:
            return await page(request, session, error=exc.message, status=exc.status)
        return web.redirect("/dashboard/keys?done=updated", request)

    @web.page(CUSTOMER)
    async def revoke(request: Request) -> Response:
        _session, account_id, _form = await web.account_form(request)
        await store.revoke(account_id, request.path_params["key_id"])
        return web.redirect("/dashboard/keys?done=revoked", request)

    return [
        Route("/dashboard/keys", list_keys, methods=["GET"]),
        Route("/dashboard/keys", create, methods=["POST"]),
        Route("/dashboard/keys/{key_id}", edit, methods=["POST"]),
        Route("/dashboard/keys/{key_id}/revoke", revoke, methods=["POST"]),
    ]


def _done(what: str | None) -> str | None:
    return {"updated": "Key saved.", "revoked": "Key revoked."}.get(what or "")
