"""The customer's way in and home page: sign in with the credit_id, sign up (the secret shown
once), sign out, the overview with the live balance and the latest requests."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.dashboard.sessions import CUSTOMER, Session
from farebox.dashboard.web import Web
from farebox.errors import FareboxError
from farebox.history.store import HistoryFilter


async def key_names(web: Web, account_id: str) -> dict[str, str]:
    """Key id -> name, revoked keys included (history shows them)."""
    keys = await web.services.keys.list(account_id, include_disabled=True)
    return {k.id: k.name for k in keys}


def routes(web: Web) -> list[Route]:
    services = web.services
    state = web.state

    def signin_page(request: Request, error: str | None = None, status: int = 200) -> Response:
        token, fresh = web.form_token(request)
        context = {"title": "Sign in", "form_token": token, "error": error}
        headers = {}
        if status == 429:
            headers["retry-after"] = "60"
        response = web.render("signin.html", context, status, headers)
        web.set_form_cookie(response, fresh)
        return response

    @web.page(CUSTOMER)
    async def overview(request: Request) -> Response:
        session = await web.session(request, CUSTOMER)
        if session is None:
            return signin_page(request)
        assert session.account_id is not None
        account_id = session.account_id
        context = {
            **web.frame(session, "/", "Overview"),
            **await balance_context(session),
            **await recent_context(account_id),
            "account_id": account_id,
            "key_count": len(await services.keys.list(account_id, include_disabled=False)),
            "base_url": services.settings.public_url or str(request.base_url).rstrip("/"),
        }
        return web.render("overview.html", context)

    async def balance_context(session: Session) -> dict[str, object]:
        assert session.account_id is not None
        await services.ledger.flush()  # our own settlements are in the balance shown
        balance = await services.ledger.balance(session.account_id)
        return {"balance": balance}

    async def recent_context(account_id: str) -> dict[str, object]:
        await services.ledger.flush()
        page = await services.history.page(HistoryFilter(account_id=account_id, page_count=5))
        return {"rows": page.rows, "key_names": await key_names(web, account_id)}

    @web.page(CUSTOMER)
    async def balance(request: Request) -> Response:
        session = await web.require(request, CUSTOMER, activity=False)
        return web.render("_balance.html", await balance_context(session))

    @web.page(CUSTOMER)
    async def recent(request: Request) -> Response:
        session = await web.require(request, CUSTOMER, activity=False)
        assert session.account_id is not None
        return web.render("_recent.html", await recent_context(session.account_id))

    @web.page(CUSTOMER)
    async def sign_in(request: Request) -> Response:
        form = await web.form(request)
        web.check_form_token(request, form)
        try:
            await state.signin_limit.check(request.scope)
        except FareboxError as exc:
            return signin_page(request, exc.message, 429)
        credit_id = form.get("credit_id", "").strip()
        account_id = await services.keys.account_for_credit(credit_id) if credit_id else None
        if account_id is None:
            return signin_page(
                request,
                "No account has that credit_id. Check it (it looks like "
                "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), or create an account.",
                401,
            )
        await state.sessions.close(web.session_token(request, CUSTOMER))
        token, _session = await state.sessions.open(CUSTOMER, account_id)
        response = web.redirect("/", request)
        web.set_session_cookie(response, CUSTOMER, token)
        return response

    @web.page(CUSTOMER)
    async def sign_up(request: Request) -> Response:
        form = await web.form(request)
        web.check_form_token(request, form)
        try:
            await services.signup_limit.check(request.scope)
        except FareboxError as exc:
            return signin_page(request, exc.message, 429)
        new = await services.keys.create_account()
        await state.sessions.close(web.session_token(request, CUSTOMER))
        token, session = await state.sessions.open(CUSTOMER, new.account_id)
        context = {
            **web.frame(session, "", "Save your secret"),
            "account_id": new.account_id,
            "credit_id": new.credit_id,
            "api_key": new.api_key,
        }
        response = web.render("secret.html", context, 201)
        web.set_session_cookie(response, CUSTOMER, token)
        return response

    @web.page(CUSTOMER)
    async def sign_out(request: Request) -> Response:
        return await web.sign_out(request, CUSTOMER, "/")

    return [
        Route("/", overview, methods=["GET"]),
        Route("/dashboard/balance", balance, methods=["GET"]),
        Route("/dashboard/recent", recent, methods=["GET"]),
        Route("/dashboard/sign-in", sign_in, methods=["POST"]),
        Route("/dashboard/sign-up", sign_up, methods=["POST"]),
        Route("/dashboard/sign-out", sign_out, methods=["POST"]),
    ]
