"""The operator's console at /console (signed in with FAREBOX_ADMIN_TOKEN): revenue, upstream
cost and margin per day, model and provider; accounts by public id with balances and a grant
form; top-ups; route health; open holds and the ledger check. The same domain code as the admin
JSON API (`/admin/…`); no page shows a credit_id or an API key."""

from __future__ import annotations

import hmac
import time
import uuid
from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.admin import grant, granted_account, parse_grant_amount
from farebox.api.requests import query_int
from farebox.dashboard.charts import stacked_bars
from farebox.dashboard.sessions import OPERATOR, Session
from farebox.dashboard.web import Web
from farebox.errors import FareboxError, InvalidRequest
from farebox.history.revenue import RevenueReport, revenue_report
from farebox.history.usage import daily_usage, day_range
from farebox.ledger.check import CheckReport
from farebox.ledger.listing import customer_accounts, open_holds
from farebox.payments import invoices
from farebox.payments.invoices import STATUSES
from farebox.providers.route_report import route_rows

ACCOUNTS_PER_PAGE = 50


def revenue_chart(report: RevenueReport) -> object:
    days = [line.name for line in report.by_day]
    series = {
        "upstream cost": [line.cost for line in report.by_day],
        "margin": [max(0, line.margin) for line in report.by_day],
        "revenue, cost unknown": [line.revenue_without_cost for line in report.by_day],
    }
    return stacked_bars(days, series)


def routes(web: Web) -> list[Route]:
    services = web.services
    state = web.state
    admin_token = services.settings.admin_token

    def signin_page(request: Request, error: str | None = None, status: int = 200) -> Response:
        token, fresh = web.form_token(request)
        context = {
            "title": "Console sign-in",
            "area": "console",
            "form_token": token,
            "enabled": admin_token is not None,
            "error": error,
        }
        response = web.render("console_signin.html", context, status)
        web.set_form_cookie(response, fresh)
        return response

    @web.page(OPERATOR)
    async def overview(request: Request) -> Response:
        session = await web.session(request, OPERATOR)
        if session is None:
            return signin_page(request)
        days = query_int(request, "days", 30, 1, 366)
        since, until = day_range(days, time.time())
        await services.ledger.flush()
        rows = await services.db.read(daily_usage, since, until, None)
        first = datetime.fromtimestamp(since, UTC).date()
        report = revenue_report(
            services.catalog, rows, [first + timedelta(days=n) for n in range(days)]
        )
        context = {
            **web.frame(session, "/console", "Revenue"),
            "days": days,
            "report": report,
            "chart": revenue_chart(report),
            "losses": await services.losses.totals(since),
        }
        return web.render("console_overview.html", context)

    @web.page(OPERATOR)
    async def sign_in(request: Request) -> Response:
        form = await web.form(request)
        web.check_form_token(request, form)
        try:
            await state.signin_limit.check(request.scope)
        except FareboxError as exc:
            return signin_page(request, exc.message, 429)
        given = form.get("admin_token", "").strip().encode()
        if admin_token is None or not hmac.compare_digest(given, admin_token.encode()):
            return signin_page(request, "That is not the admin token.", 401)
        await state.sessions.close(web.session_token(request, OPERATOR))
        token, _session = await state.sessions.open(OPERATOR, admin_token=admin_token)
        response = web.redirect("/console", request)
        web.set_session_cookie(response, OPERATOR, token)
        return response

    @web.page(OPERATOR)
    async def sign_out(request: Request) -> Response:
        return await web.sign_out(request, OPERATOR, "/console")

    async def accounts_page(
        request: Request,
        session: Session,
        notice: str | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> Response:
        q = request.query_params.get("q", "").strip()[:64]
        page = query_int(request, "page", 1, 1, 10**6)
        await services.ledger.flush()
        listing = await services.db.read(
            customer_accounts, q, ACCOUNTS_PER_PAGE, (page - 1) * ACCOUNTS_PER_PAGE
        )
        context = {
            **web.frame(session, "/console/accounts", "Accounts"),
            "accounts": listing.rows,
            "total": listing.total,
            "q": q,
            "page": page,
            "pages": max(1, (listing.total + ACCOUNTS_PER_PAGE - 1) // ACCOUNTS_PER_PAGE),
            "grant_to": request.query_params.get("grant", "")[:64],
            "idempotency_key": uuid.uuid4().hex,
            "notice": notice,
            "error": error,
        }
        return web.render("console_accounts.html", context, status)

    @web.page(OPERATOR)
    async def accounts(request: Request) -> Response:
        session = await web.require(request, OPERATOR)
        done = request.query_params.get("done")
        return await accounts_page(
            request, session, "Credit granted." if done == "granted" else None
        )

    @web.page(OPERATOR)
    async def grant_credit(request: Request) -> Response:
        session = await web.require(request, OPERATOR)
        form = await web.checked_form(request, session)
        idem = form.get("idempotency_key", "")[:64] or None
        try:
            account_id = await granted_account(services, {"account_id": form.get("account_id", "")})
            nanos = parse_grant_amount(form.get("amount_usd", "").strip())
            await grant(services.ledger, account_id, nanos, idem)
        except FareboxError as exc:
            return await accounts_page(request, session, error=exc.message, status=exc.status)
        return web.redirect(f"/console/accounts?q={account_id}&done=granted", request)

    @web.page(OPERATOR)
    async def topups(request: Request) -> Response:
        session = await web.require(request, OPERATOR)
        status = request.query_params.get("status") or None
        if status is not None and status not in STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}")
        account_id = request.query_params.get("account_id", "").strip()[:64] or None
        rows = await services.db.read(
            lambda conn: invoices.list_invoices(
                conn, account_id=account_id, status=status, limit=200
            )
        )
        context = {
            **web.frame(session, "/console/topups", "Top-ups"),
            "invoices": rows,
            "statuses": STATUSES,
            "status": status or "",
            "account_id": account_id or "",
        }
        return web.render("console_topups.html", context)

    @web.page(OPERATOR)
    async def route_health(request: Request) -> Response:
        session = await web.require(request, OPERATOR)
        context = {
            **web.frame(session, "/console/routes", "Routes"),
            "routes": route_rows(services.catalog, services.router),
            "summary": services.router.health.summary(),
        }
        return web.render("console_routes.html", context)

    async def ledger_page(session: Session, report: CheckReport | None) -> Response:
        await services.ledger.flush()
        holds, count, total = await services.db.read(open_holds, 100)
        context = {
            **web.frame(session, "/console/ledger", "Ledger"),
            "report": report,
            "holds": holds,
            "hold_count": count,
            "hold_sum": total,
            "now": time.time(),
        }
        return web.render("console_ledger.html", context)

    @web.page(OPERATOR)
    async def ledger(request: Request) -> Response:
        return await ledger_page(await web.require(request, OPERATOR), None)

    @web.page(OPERATOR)
    async def ledger_check(request: Request) -> Response:
        session = await web.require(request, OPERATOR)
        await web.checked_form(request, session)
        await services.ledger.flush()
        return await ledger_page(session, await services.ledger.check())

    return [
        Route("/console", overview, methods=["GET"]),
        Route("/console/sign-in", sign_in, methods=["POST"]),
        Route("/console/sign-out", sign_out, methods=["POST"]),
        Route("/console/accounts", accounts, methods=["GET"]),
        Route("/console/accounts/grant", grant_credit, methods=["POST"]),
        Route("/console/topups", topups, methods=["GET"]),
        Route("/console/routes", route_health, methods=["GET"]),
        Route("/console/ledger", ledger, methods=["GET"]),
        Route("/console/ledger/check", ledger_check, methods=["POST"]),
    ]
