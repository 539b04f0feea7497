"""The dashboard's web security over real HTTP, on SQLite and PostgreSQL: server-side sessions
(cookie flags, sign-out, rotation, the admin token), CSRF and origin checks, escaping, the
sign-in limit, and the playground billing its own key with no key in the page."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from farebox.db.schema import dashboard_sessions, queries
from farebox.sim.server import SimServer

from support import (
    ADMIN_TOKEN,
    NANOS,
    Gateway,
    database_url,
    require_db,
    running_gateway,
)
from support import test_catalog as sim_catalog


class Browser:
    """A client that keeps cookies the way a browser would on this origin (Secure ones too:
    tests talk to loopback over http) and reads the forms' CSRF tokens."""

    def __init__(self, base: str, origin: str | None = None) -> None:
        self.http = httpx.Client(base_url=base, timeout=30, follow_redirects=False)
        self.origin = origin if origin is not None else base
        self.cookies: dict[str, str] = {}
        self.last: httpx.Response | None = None

    def _keep(self, response: httpx.Response) -> httpx.Response:
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if "max-age=0" in header.lower() or "expires=thu, 01 jan 1970" in header.lower():
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        self.last = response
        return response

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        return {**headers, **(extra or {})}

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self._keep(self.http.get(path, headers=self._headers(headers)))

    def post(
        self, path: str, data: dict[str, str], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        sent = {"origin": self.origin, **(headers or {})}
        return self._keep(self.http.post(path, data=data, headers=self._headers(sent)))

    def token(self, html: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert found, html[:500]
        return found.group(1)

    def sign_up(self) -> tuple[str, str]:
        """(account_id, credit_id) of a new account made through the sign-up form."""
        token = self.token(self.get("/").text)
        page = self.post("/dashboard/sign-up", {"csrf_token": token})
        assert page.status_code == 201, page.text
        credit_id = re.search(r'id="credit-id"[^>]*>([^<]+)<', page.text)
        account_id = re.search(r"<code>(acct_[0-9a-f]+)</code>", page.text)
        assert credit_id and account_id
        return account_id.group(1), credit_id.group(1)

    def sign_in(self, credit_id: str) -> httpx.Response:
        token = self.token(self.get("/").text)
        return self.post("/dashboard/sign-in", {"credit_id": credit_id, "csrf_token": token})

    def csrf(self, path: str = "/dashboard/keys") -> str:
        found = re.search(r'name="csrf-token" content="([^"]+)"', self.get(path).text)
        assert found
        return found.group(1)


def session_rows(gw: Gateway) -> int:
    return int(
        gw.services.db.read_sync(
            lambda c: c.execute(select(func.count()).select_from(dashboard_sessions)).scalar_one()
        )
    )


def key_names(gw: Gateway, credit_id: str) -> set[str]:
    with gw.client() as c:
        r = c.get("/keys", headers={"x-credit-id": credit_id}, params={"include_disabled": "true"})
        return {k["name"] for k in r.json()["data"]}


def test_the_session_cookie_is_httponly_strict_secure_and_only_its_hash_is_stored(
    gateway: Gateway,
) -> None:
    browser = Browser(gateway.url)
    browser.sign_up()
    assert browser.last is not None
    (cookie,) = [h for h in browser.last.headers.get_list("set-cookie") if "farebox_session=" in h]
    name, _, rest = cookie.partition("=")
    token = rest.split(";", 1)[0]
    assert name == "__Host-farebox_session"  # FAREBOX_PUBLIC_URL unset: TLS ends at a proxy
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags
    stored = gateway.services.db.read_sync(
        lambda c: [tuple(r) for r in c.execute(select(dashboard_sessions)).fetchall()]
    )
    assert any(row[0] == hashlib.sha256(token.encode()).hexdigest() for row in stored)
    assert all(token not in map(str, row) for row in stored)


def test_pages_carry_a_strict_csp_refuse_framing_and_are_not_cached(gateway: Gateway) -> None:
    browser = Browser(gateway.url)
    for path in ("/", "/console", "/dashboard/models"):
        r = browser.get(path)
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["cache-control"] == "no-store"
        assert "<script>" not in r.text  # no inline script: every script is a file
        assert " style=" not in r.text  # nor inline style


def test_sign_out_deletes_the_session_and_the_old_cookie_no_longer_signs_in(
    gateway: Gateway,
) -> None:
    browser = Browser(gateway.url)
    browser.sign_up()
    kept = dict(browser.cookies)
    assert "Your account" in browser.get("/").text
    before = session_rows(gateway)
    csrf = browser.csrf("/")
    out = browser.post("/dashboard/sign-out", {"csrf_token": csrf})
    assert out.status_code == 303
    assert session_rows(gateway) == before - 1
    replay = Browser(gateway.url)
    replay.cookies = kept  # someone who copied the cookie before sign-out
    page = replay.get("/")
    assert "Your account" not in page.text and "Sign in" in page.text
    assert replay.get("/dashboard/keys").headers["location"] == "/"


def test_state_changing_requests_without_the_token_or_from_another_site_change_nothing(
    gateway: Gateway,
) -> None:
    browser = Browser(gateway.url)
    _account, credit_id = browser.sign_up()
    csrf = browser.csrf()
    form = {"name": "attack", "usage_limit_usd": "", "reset_period": "", "expire_at": ""}
    attempts = [
        browser.post("/dashboard/keys", form),  # no token
        browser.post("/dashboard/keys", {**form, "csrf_token": "guessed"}),
        browser.post(
            "/dashboard/keys", {**form, "csrf_token": csrf}, {"origin": "https://evil.example"}
        ),
        browser.post("/dashboard/keys", {**form, "csrf_token": csrf}, {"origin": "null"}),
        browser.post(
            "/dashboard/keys", {**form, "csrf_token": csrf}, {"sec-fetch-site": "cross-site"}
        ),
    ]
    assert [r.status_code for r in attempts] == [403] * 5
    assert "attack" not in key_names(gateway, credit_id)
    # Another account's token is no good either.
    other = Browser(gateway.url)
    other.sign_up()
    stolen = other.csrf()
    assert browser.post("/dashboard/keys", {**form, "csrf_token": stolen}).status_code == 403
    assert browser.post("/dashboard/keys", {**form, "csrf_token": csrf}).status_code == 201
    assert "attack" in key_names(gateway, credit_id)
    # The sign-in form's token is bound to the browser's own cookie.
    fresh = Browser(gateway.url)
    fresh.get("/")
    forged = fresh.post("/dashboard/sign-in", {"credit_id": credit_id, "csrf_token": "x" * 64})
    assert forged.status_code == 403


def test_customer_text_is_escaped(gateway: Gateway) -> None:
    browser = Browser(gateway.url)
    _account, credit_id = browser.sign_up()
    with gateway.client() as c:
        made = c.post(
            "/keys", headers={"x-credit-id": credit_id}, json={"name": "<script>alert(1)</script>"}
        )
        assert made.status_code == 201
    html = browser.get("/dashboard/keys").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html


def test_rotating_the_credit_id_signs_its_dashboard_sessions_out(gateway: Gateway) -> None:
    browser = Browser(gateway.url)
    _account, credit_id = browser.sign_up()
    assert "Your account" in browser.get("/").text
    with gateway.client() as c:
        assert c.post("/credits/rotate", headers={"x-credit-id": credit_id}).status_code == 200
    assert "Your account" not in browser.get("/").text


def test_a_grant_form_posted_twice_grants_once(gateway: Gateway) -> None:
    customer = Browser(gateway.url)
    account_id, credit_id = customer.sign_up()
    operator = Browser(gateway.url)
    token = operator.token(operator.get("/console").text)
    signed = operator.post("/console/sign-in", {"admin_token": ADMIN_TOKEN, "csrf_token": token})
    assert signed.status_code == 303
    page = operator.get("/console/accounts").text
    assert account_id in page and credit_id not in page
    idem = re.search(r'name="idempotency_key" value="([^"]+)"', page)
    assert idem
    form = {
        "account_id": account_id,
        "amount_usd": "1.25",
        "idempotency_key": idem.group(1),
        "csrf_token": operator.csrf("/console/accounts"),
    }
    assert operator.post("/console/accounts/grant", form).status_code == 303
    assert operator.post("/console/accounts/grant", form).status_code == 303
    assert gateway.nanos(account_id) == (int(1.25 * NANOS), 0)
    bad = operator.post("/console/accounts/grant", {**form, "amount_usd": "-1"})
    assert bad.status_code == 400 and gateway.nanos(account_id) == (int(1.25 * NANOS), 0)


def test_the_playground_bills_its_own_key_and_no_key_reaches_the_page(
    gateway: Gateway,
) -> None:
    browser = Browser(gateway.url)
    account_id, credit_id = browser.sign_up()
    with gateway.client() as c:
        granted = c.post(
            "/admin/credits",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            json={"account_id": account_id, "amount_usd": "1"},
        )
        assert granted.status_code == 200
    page = browser.get("/dashboard/playground").text
    assert "sk-" not in page
    csrf = browser.csrf("/dashboard/playground")
    body = {"model": "test-model", "messages": [{"role": "user", "content": "Hi there"}]}
    cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    headers = {"cookie": cookie, "origin": gateway.url, "x-csrf-token": csrf}
    with browser.http.stream("POST", "/dashboard/playground/chat", json=body, headers=headers) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]" and '"cost"' in events[-2]
    refused = browser.http.post(
        "/dashboard/playground/chat", json=body, headers={**headers, "x-csrf-token": "no"}
    )
    assert refused.status_code == 403 and "error" in refused.json()
    anonymous = httpx.post(gateway.url + "/dashboard/playground/chat", json=body)
    assert anonymous.status_code == 401
    rows = gateway.services.db.read_sync(
        lambda c: c.execute(
            select(queries.c.key_id, queries.c.query_source).where(
                queries.c.account_id == account_id
            )
        ).fetchall()
    )
    assert len(rows) == 1 and rows[0].query_source == "dashboard"
    with gateway.client() as c:
        keys = c.get("/keys", headers={"x-credit-id": credit_id}).json()["data"]
    (played,) = [k for k in keys if k["_id"] == rows[0].key_id]
    assert played["name"] == "playground" and played["total_usage_all_time_usd"] > 0


@pytest.fixture(params=["sqlite", "postgresql"])
def limited_gateway(
    request: pytest.FixtureRequest, sim: SimServer, tmp_path: Path
) -> Iterator[Gateway]:
    require_db(request.param)
    with (
        database_url(request.param, tmp_path) as url,
        running_gateway(
            url, sim_catalog(sim.url), signin_per_minute=1, signin_burst=3, public_url="http://x"
        ) as gw,
    ):
        yield gw


def test_sign_in_attempts_are_rate_limited_per_client_and_plain_http_drops_secure(
    limited_gateway: Gateway,
) -> None:
    browser = Browser(limited_gateway.url)
    _account, credit_id = browser.sign_up()
    assert browser.last is not None
    cookie = next(h for h in browser.last.headers.get_list("set-cookie") if "session=" in h)
    assert cookie.startswith("farebox_session=") and "secure" not in cookie.lower()
    guesser = Browser(limited_gateway.url)
    wrong = [guesser.sign_in("00000000-0000-4000-8000-000000000000") for _ in range(3)]
    assert [r.status_code for r in wrong] == [401, 401, 401]
    limited = guesser.sign_in(credit_id)  # even the right one, once over the limit
    assert limited.status_code == 429 and limited.headers["retry-after"]
    assert "Too many sign-in requests" in limited.text
    operator = Browser(limited_gateway.url)
    token = operator.token(operator.get("/console").text)
    refused = operator.post("/console/sign-in", {"admin_token": ADMIN_TOKEN, "csrf_token": token})
    assert refused.status_code == 429  # the console's sign-in counts against the same address


def test_changing_the_admin_token_ends_console_sessions(sim: SimServer, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'farebox.db'}"
    operator = Browser("http://unused")
    with running_gateway(url, sim_catalog(sim.url)) as first:
        operator = Browser(first.url)
        token = operator.token(operator.get("/console").text)
        operator.post("/console/sign-in", {"admin_token": ADMIN_TOKEN, "csrf_token": token})
        assert "Revenue" in operator.get("/console").text
        cookies = dict(operator.cookies)
    with running_gateway(url, sim_catalog(sim.url), admin_token="a-new-token") as second:
        again = Browser(second.url)
        again.cookies = cookies
        page = again.get("/console")
        assert "Admin token" in page.text and "Revenue</h1>" not in page.text
        assert again.get("/console/accounts").status_code == 303


def test_bad_form_input_gets_a_4xx_page_and_changes_nothing(gateway: Gateway) -> None:
    browser = Browser(gateway.url)
    account_id, credit_id = browser.sign_up()
    csrf = browser.csrf()
    base = {"csrf_token": csrf, "name": "k", "usage_limit_usd": "", "reset_period": ""}
    for bad in (
        {"usage_limit_usd": "abc"},
        {"usage_limit_usd": "1e400"},
        {"reset_period": "hourly"},
        {"name": "x" * 200},
        {"expire_at": "2001-01-01"},
        {"reset_period": "daily"},  # a period needs a limit
    ):
        r = browser.post("/dashboard/keys", {**base, "expire_at": "", **bad})
        assert r.status_code == 400 and "notice error" in r.text, bad
    assert key_names(gateway, credit_id) == {"default"}
    for amount in ("", "-5", "abc", "9" * 40):
        r = browser.post(
            "/dashboard/topup", {"csrf_token": csrf, "method": "btc", "amount": amount}
        )
        assert 400 <= r.status_code < 500
    assert gateway.nanos(account_id) == (0, 0)
    assert browser.get("/dashboard/activity?start_date=yesterday").status_code == 400
    assert browser.get("/dashboard/activity?page_count=100000").status_code == 400
    assert browser.get("/dashboard/topup/inv_nope").status_code == 404


def test_the_keys_page_sets_and_shows_rate_limits_and_models(gateway: Gateway) -> None:
    browser = Browser(gateway.url)
    _account, credit_id = browser.sign_up()
    form = {
        "name": "scoped",
        "usage_limit_usd": "",
        "reset_period": "",
        "expire_at": "",
        "rpm_limit": "30",
        "tpm_limit": "",
        "allowed_models": "test-model, claude-*",
        "csrf_token": browser.csrf(),
    }
    made = browser.post("/dashboard/keys", form)
    assert made.status_code == 201, made.text
    assert "30 requests/min" in made.text and "models: test-model, claude-*" in made.text
    with gateway.client() as c:
        keys = c.get("/keys", headers={"x-credit-id": credit_id}).json()["data"]
    scoped = next(k for k in keys if k["name"] == "scoped")
    assert scoped["rpm_limit"] == 30 and scoped["tpm_limit"] is None
    assert scoped["allowed_models"] == ["test-model", "claude-*"]
    bad = browser.post("/dashboard/keys", {**form, "name": "bad", "rpm_limit": "lots"})
    assert bad.status_code == 400 and "rpm_limit" in bad.text
    edited = browser.post(
        f"/dashboard/keys/{scoped['_id']}",
        {
            **form,
            "rpm_limit": "",
            "tpm_limit": "5000",
            "allowed_models": "",
            "csrf_token": browser.csrf(),
        },
    )
    assert edited.status_code in (302, 303), edited.text
    with gateway.client() as c:
        shown = c.get(f"/keys/{scoped['_id']}", headers={"x-credit-id": credit_id}).json()["data"]
    assert (shown["rpm_limit"], shown["tpm_limit"], shown["allowed_models"]) == (None, 5000, None)
