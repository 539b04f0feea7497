"""The dashboard's web plumbing: templates, shipped assets, security headers, cookies, sessions
and CSRF, shared by the customer pages and the operator console.

Security, in one place:
- Every response carries a strict Content-Security-Policy (scripts, styles and fetches from this
  origin only; no inline script or style, no eval; `frame-ancestors 'none'`), and is never cached.
- Templates autoescape: whatever a customer typed (a key's name) is shown as text.
- The session cookie holds only a random id (sessions.py); it is HttpOnly, SameSite=Strict, and
  Secure unless FAREBOX_PUBLIC_URL is a plain http:// URL (then it is named without `__Host-`).
- Every state-changing request must carry the session's CSRF token (a form field, or the
  X-CSRF-Token header the pages' scripts send) and must not come from another site (Origin,
  Sec-Fetch-Site). The sign-in and sign-up forms, shown before any session exists, carry a token
  signed with a key derived from the instance secret and bound to a random cookie.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import mimetypes
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from farebox import optional
from farebox.api.requests import read_body
from farebox.api.services import Services
from farebox.dashboard.sessions import CUSTOMER, OPERATOR, Session
from farebox.errors import FareboxError
from farebox.money import format_usd

if TYPE_CHECKING:
    import jinja2

HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
NO_STORE = {"cache-control": "no-store"}
PAGE_DEFAULTS: dict[str, Any] = {
    "title": "",
    "area": "customer",
    "nav": (),
    "here": "",
    "csrf": None,
    "notice": None,
    "error": None,
}
CUSTOMER_NAV = (
    ("/", "Overview"),
    ("/dashboard/keys", "Keys"),
    ("/dashboard/activity", "Activity"),
    ("/dashboard/topup", "Top up"),
    ("/dashboard/models", "Models"),
    ("/dashboard/playground", "Playground"),
)
CONSOLE_NAV = (
    ("/console", "Revenue"),
    ("/console/accounts", "Accounts"),
    ("/console/topups", "Top-ups"),
    ("/console/routes", "Routes"),
    ("/console/ledger", "Ledger"),
)
FORM_LIMIT = 64 * 1024
MAX_FORM_FIELDS = 50


class SignInNeeded(Exception):
    """No live session of the kind a page needs: send the browser to sign in."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class FormRejected(Exception):
    """A state-changing request without a valid CSRF token, or from another site."""


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    version: str


def load_assets(folder: Path) -> dict[str, Asset]:
    """The shipped static files, read once (they are small): name -> body, type, content hash."""
    assets = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            body = path.read_bytes()
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind in ("application/javascript",):
                kind += "; charset=utf-8"
            assets[path.name] = Asset(body, kind, hashlib.sha256(body).hexdigest()[:12])
    return assets


def usd(nanos: int | None) -> str:
    """Nanodollars for people, to the micro-dollar (so a request's cost moves the balance
    shown): `$4.999912`, `$1,250.50`; an amount under a micro-dollar exactly."""
    if nanos is None:
        return "—"
    sign = "-" if nanos < 0 else ""
    micros = (abs(nanos) + 500) // 1000
    if nanos != 0 and micros == 0:
        return f"{sign}${format_usd(abs(nanos))}"
    whole, frac = divmod(micros, 1_000_000)
    return f"{sign}${whole:,}.{f'{frac:06d}'.rstrip('0').ljust(2, '0')}"


def when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


class Web:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.state = services.dashboard
        settings = services.settings
        self.secure = not (settings.public_url or "").lower().startswith("http://")
        prefix = "__Host-" if self.secure else ""
        self.cookie_names = {
            CUSTOMER: prefix + "farebox_session",
            OPERATOR: prefix + "farebox_console",
        }
        self.form_cookie = prefix + "farebox_form"
        self.assets = load_assets(HERE / "static")
        self.public_origin = _origin(settings.public_url) if settings.public_url else None

    @functools.cached_property
    def env(self) -> jinja2.Environment:
        """The templates, set up when the first page is rendered: a gateway whose dashboard is
        never opened does not carry Jinja2 (about 2 MB)."""
        jinja = optional.jinja2()
        env: jinja2.Environment = jinja.Environment(
            loader=jinja.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.globals["static"] = self.static_url
        env.filters["usd"] = usd
        env.filters["when"] = when
        env.filters["day"] = day
        env.filters["usd_exact"] = format_usd
        return env

    def static_url(self, name: str) -> str:
        return f"/dashboard/static/{name}?v={self.assets[name].version}"

    def frame(self, session: Session | None, here: str, title: str) -> dict[str, Any]:
        """The context every page of a signed-in area needs (navigation, CSRF token)."""
        console = session is not None and session.kind == OPERATOR
        return {
            "title": title,
            "here": here,
            "area": "console" if console else "customer",
            "nav": (CONSOLE_NAV if console else CUSTOMER_NAV) if session is not None else (),
            "csrf": session.csrf_token if session is not None else None,
        }

    # -- responses -----------------------------------------------------------------------------

    def render(
        self,
        name: str,
        context: Mapping[str, Any],
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        html = self.env.get_template(name).render(**{**PAGE_DEFAULTS, **context})
        return HTMLResponse(
            html, status, headers={**SECURITY_HEADERS, **NO_STORE, **(headers or {})}
        )

    def redirect(self, url: str, request: Request) -> Response:
        """See other: a plain 303, or for htmx a header telling it to load the page."""
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={**SECURITY_HEADERS, "hx-redirect": url})
        return RedirectResponse(url, 303, headers={**SECURITY_HEADERS, **NO_STORE})

    def set_session_cookie(self, response: Response, kind: str, token: str) -> None:
        response.set_cookie(
            self.cookie_names[kind],
            token,
            max_age=int(self.services.settings.session_max_s),
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="strict",
        )

    def clear_session_cookie(self, response: Response, kind: str) -> None:
        response.delete_cookie(
            self.cookie_names[kind], path="/", secure=self.secure, httponly=True, samesite="strict"
        )

    # -- sessions --------------------------------------------------------------------------------

    def session_token(self, request: Request, kind: str) -> str | None:
        return request.cookies.get(self.cookie_names[kind])

    async def session(self, request: Request, kind: str, activity: bool = True) -> Session | None:
        admin = self.services.settings.admin_token if kind == OPERATOR else None
        return await self.state.sessions.load(
            self.session_token(request, kind), kind, admin_token=admin, activity=activity
        )

    async def require(self, request: Request, kind: str, activity: bool = True) -> Session:
        session = await self.session(request, kind, activity)
        if session is None:
            raise SignInNeeded(kind)
        return session

    # -- forms and CSRF --------------------------------------------------------------------------

    async def form(self, request: Request) -> dict[str, str]:
        """A urlencoded form, bounded: the first value of each of at most 50 fields."""
        self.check_origin(request)
        raw = await read_body(request, FORM_LIMIT)
        try:
            parsed = parse_qs(
                raw.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise FormRejected("unreadable form") from exc
        return {name: values[0] for name, values in parsed.items()}

    def check_origin(self, request: Request) -> None:
        """Refuse a state-changing request another site made the browser send."""
        if request.headers.get("sec-fetch-site") == "cross-site":
            raise FormRejected("cross-site request")
        origin = request.headers.get("origin")
        if origin is None:
            return  # not sent by browsers that predate it; the token still has to match
        host = request.headers.get("host", "").lower()
        if urlsplit(origin).netloc.lower() == host and host:
            return
        if self.public_origin is not None and origin.lower() == self.public_origin:
            return
        raise FormRejected("cross-origin request")

    def check_csrf(self, session: Session, given: str | None) -> None:
        if not given or not hmac.compare_digest(given.encode(), session.csrf_token.encode()):
            raise FormRejected("missing or wrong CSRF token")

    async def checked_form(self, request: Request, session: Session) -> dict[str, str]:
        form = await self.form(request)
        self.check_csrf(session, form.get("csrf_token"))
        return form

    async def account_form(self, request: Request) -> tuple[Session, str, dict[str, str]]:
        """A signed-in customer's state-changing form: the session, its account id and the form,
        its CSRF token checked (SignInNeeded or FormRejected otherwise)."""
        session = await self.require(request, CUSTOMER)
        form = await self.checked_form(request, session)
        assert session.account_id is not None
        return session, session.account_id, form

    async def sign_out(self, request: Request, kind: str, then: str) -> Response:
        """End this browser's session of `kind` (its row deleted) and go to `then`."""
        session = await self.session(request, kind)
        if session is not None:
            await self.checked_form(request, session)
            await self.state.sessions.close(self.session_token(request, kind))
        response = self.redirect(then, request)
        self.clear_session_cookie(response, kind)
        return response

    def check_header_csrf(self, request: Request, session: Session) -> None:
        self.check_origin(request)
        self.check_csrf(session, request.headers.get("x-csrf-token"))

    def form_token(self, request: Request) -> tuple[str, str | None]:
        """(the token for a form shown before sign-in, a new cookie value to set or None)."""
        nonce = request.cookies.get(self.form_cookie)
        fresh = None
        if not nonce or len(nonce) > 64:
            nonce = fresh = secrets.token_urlsafe(24)
        return self._sign(nonce), fresh

    def set_form_cookie(self, response: Response, nonce: str | None) -> None:
        if nonce is not None:
            response.set_cookie(
                self.form_cookie,
                nonce,
                max_age=86_400,
                path="/",
                secure=self.secure,
                httponly=True,
                samesite="strict",
            )

    def check_form_token(self, request: Request, form: Mapping[str, str]) -> None:
        nonce = request.cookies.get(self.form_cookie)
        given = form.get("csrf_token", "")
        if not nonce or not hmac.compare_digest(given.encode(), self._sign(nonce).encode()):
            raise FormRejected("missing or wrong form token")

    def _sign(self, nonce: str) -> str:
        return hmac.new(self.state.form_key, nonce.encode(), hashlib.sha256).hexdigest()

    # -- errors --------------------------------------------------------------------------------

    def page(
        self, kind: str
    ) -> Callable[
        [Callable[[Request], Awaitable[Response]]], Callable[[Request], Awaitable[Response]]
    ]:
        """Wrap a handler: no session -> sign in; a rejected form -> 403; a domain error ->
        its message on an error page (escaped), with its status."""

        def wrap(
            handler: Callable[[Request], Awaitable[Response]],
        ) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                try:
                    return await handler(request)
                except SignInNeeded as exc:
                    return self.redirect("/console" if exc.kind == OPERATOR else "/", request)
                except FormRejected:
                    return self.error(
                        kind,
                        403,
                        "This form was refused: it has expired or was sent from another site. "
                        "Reload the page and try again.",
                    )
                except FareboxError as exc:
                    return self.error(kind, exc.status, exc.message)

            return endpoint

        return wrap

    def error(self, kind: str, status: int, message: str) -> HTMLResponse:
        home = "/console" if kind == OPERATOR else "/"
        return self.render(
            "error.html", {"status": status, "message": message, "home": home}, status
        )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
