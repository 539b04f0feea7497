"""The dashboard in a real browser (Debian's chromium through Playwright) against
`farebox serve --demo` started as a user would, and `farebox dev pay` run as printed.

Each page is screenshotted into test-screenshots/ (FAREBOX_SCREENSHOTS), with every element that
holds a secret (`[data-secret]`) painted over: no screenshot shows a credit_id or an API key.
"""

from __future__ import annotations

import http.server
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from farebox.dashboard.web import usd

from support import free_port

TIMEOUT_MS = 15_000


@dataclass
class Demo:
    url: str
    db_path: Path
    env: dict[str, str]
    credit_id: str
    api_key: str
    account_id: str
    admin_token: str
    banner: str


def _banner_value(banner: str, label: str) -> str:
    match = re.search(rf"^\s*{label}:\s+(\S+)", banner, re.MULTILINE)
    assert match, f"no {label} in the banner:\n{banner}"
    return match.group(1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp("demo")
    port = free_port()
    db_path = folder / "demo.db"
    env = {**os.environ, "FAREBOX_DATABASE_URL": f"sqlite:///{db_path}"}
    env.pop("FAREBOX_ADMIN_TOKEN", None)
    env.pop("FAREBOX_PUBLIC_URL", None)
    log = folder / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "farebox", "serve", "--demo", "--port", str(port)],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 90
        url = f"http://127.0.0.1:{port}"
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        banner = log.read_text(errors="replace")
        assert f"open {url}/  (the dashboard" in banner
        console = re.search(
            r"open \S+/console  \(the operator console: admin token (\S+)\)", banner
        )
        assert console, banner
        yield Demo(
            url=url,
            db_path=db_path,
            env=env,
            credit_id=_banner_value(banner, "credit_id"),
            api_key=_banner_value(banner, "api_key"),
            account_id=_banner_value(banner, "account"),
            admin_token=console.group(1),
            banner=banner,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def shot(page: Any, folder: Path, name: str) -> None:
    """A full-page screenshot with every secret on it painted over."""
    page.screenshot(
        path=str(folder / f"{name}.png"),
        full_page=True,
        mask=[page.locator("[data-secret]")],
        mask_color="#5f5f5a",
        animations="disabled",
    )


def sign_in(page: Any, demo: Demo) -> None:
    page.goto(demo.url + "/")
    page.fill("#credit_id", demo.credit_id)
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("h1:has-text('Your account')", timeout=TIMEOUT_MS)


def text_of(page: Any, selector: str) -> str:
    return str(page.locator(selector).inner_text()).strip()


def micros(shown: str) -> int:
    """A dollar amount as the dashboard shows it ("$4.999912"), in micro-dollars."""
    whole, _, frac = shown.strip().lstrip("$").replace(",", "").partition(".")
    return int(whole) * 1_000_000 + int(frac.ljust(6, "0")[:6])


def wait_for_change(page: Any, selector: str, before: str) -> str:
    page.wait_for_function(
        "([sel, old]) => { const el = document.querySelector(sel);"
        " return el && el.textContent.trim() !== old; }",
        arg=[selector, before],
        timeout=TIMEOUT_MS,
    )
    return text_of(page, selector)


def test_a_new_visitor_creates_an_account_saves_its_secret_and_signs_back_in(
    page: Any, demo: Demo, screenshots: Path
) -> None:
    page.goto(demo.url + "/")
    assert page.title() == "Sign in · farebox"
    shot(page, screenshots, "01-sign-in")
    page.click("button:has-text('Create an account')")
    page.wait_for_selector("h1:has-text('Save your secret now')")
    credit_id = text_of(page, "#credit-id")
    assert re.fullmatch(r"[0-9a-f-]{36}", credit_id)
    assert text_of(page, "#api-key").startswith("sk-")
    assert page.url == demo.url + "/dashboard/sign-up"  # the secret is in no URL
    shot(page, screenshots, "02-sign-up-secret-masked")
    assert page.locator("#continue").is_disabled()
    page.check("#saved")
    assert page.locator("#continue").is_enabled()
    page.click("#continue")
    page.wait_for_selector("h1:has-text('Your account')")
    assert text_of(page, "[data-testid=balance]") == "$0.00"
    page.click("button:has-text('Sign out')")
    page.wait_for_selector("h1:has-text('Sign in')")
    # By keyboard alone: the field has the focus, Enter sends the form.
    assert page.evaluate("document.activeElement.id") == "credit_id"
    page.keyboard.type(credit_id)
    page.keyboard.press("Enter")
    page.wait_for_selector("h1:has-text('Your account')")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
    shot(page, screenshots, "03-overview-phone")


def test_the_demo_account_makes_a_limited_key_uses_it_and_watches_balance_and_activity(
    page: Any, demo: Demo, screenshots: Path
) -> None:
    sign_in(page, demo)
    page.goto(demo.url + "/dashboard/keys")
    page.fill("#k-name", "sdk key")
    page.fill("#k-limit", "0.50")
    page.select_option("#k-reset", "daily")
    page.click("button:has-text('Create key')")
    page.wait_for_selector("h2:has-text('created')")
    raw_key = text_of(page, "#new-key")
    assert raw_key.startswith("sk-")
    shot(page, screenshots, "03b-keys-new-key-masked")
    row = page.locator("tr", has_text="sdk key")
    assert "of $0.50" in row.inner_text()

    page.goto(demo.url + "/")
    before = text_of(page, "[data-testid=balance]")
    client = OpenAI(api_key=raw_key, base_url=demo.url + "/v1")
    reply = client.chat.completions.create(
        model="gpt-5-mini", messages=[{"role": "user", "content": "Hello from the dashboard test"}]
    )
    assert reply.usage is not None and reply.usage.model_extra["cost"] > 0
    after = wait_for_change(page, "[data-testid=balance]", before)  # no reload
    assert after != before
    page.wait_for_selector("#recent td:has-text('sdk key')", timeout=TIMEOUT_MS)
    assert "gpt-5-mini" in text_of(page, "#recent")
    shot(page, screenshots, "04-overview")

    page.goto(demo.url + "/dashboard/keys")
    row_text = page.locator("tr", has_text="sdk key").inner_text()
    assert "$0.00 of $0.50" not in row_text  # the key's usage counts the request

    page.goto(demo.url + "/dashboard/activity")
    page.wait_for_selector("#activity-rows td:has-text('gpt-5-mini')")
    assert page.locator(".chart svg rect").count() >= 1
    shot(page, screenshots, "05-activity")
    with page.expect_download() as download:
        page.click("a:has-text('Export as CSV')")
    csv_text = Path(download.value.path()).read_text()
    assert csv_text.splitlines()[0].startswith("timestamp,model,")
    assert "gpt-5-mini" in csv_text and "sdk key" in csv_text

    page.goto(demo.url + "/dashboard/models")
    page.fill("#m-q", "claude")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#models-table tbody tr')]"
        ".every(r => r.textContent.toLowerCase().includes('claude'))",
        timeout=TIMEOUT_MS,
    )
    shot(page, screenshots, "06-models")


def test_a_topup_paid_with_farebox_dev_pay_updates_the_page(
    page: Any, demo: Demo, screenshots: Path
) -> None:
    sign_in(page, demo)
    page.goto(demo.url + "/dashboard/topup")
    page.fill("#t-amount", "5")
    page.click("button:has-text('Get an invoice')")
    page.wait_for_selector(".qr svg")
    before = text_of(page, "[data-testid=balance]")
    bolt11 = page.locator("#pay-request").input_value()
    assert bolt11.startswith("lnbc")
    shot(page, screenshots, "07-topup-invoice")
    paid = subprocess.run(  # the gateway's dev wallet pays, asked over loopback
        [sys.executable, "-m", "farebox", "dev", "pay", "--url", demo.url, bolt11],
        env={**demo.env, "FAREBOX_ADMIN_TOKEN": demo.admin_token},
        cwd=demo.db_path.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert paid.returncode == 0, paid.stderr
    page.wait_for_selector("[data-testid=invoice-paid]", timeout=TIMEOUT_MS)  # no reload
    after = wait_for_change(page, "[data-testid=balance]", before)
    assert micros(after) - micros(before) == 5_000_000  # $5, to the micro-dollar
    shot(page, screenshots, "08-topup-paid")


def test_the_playground_streams_a_reply_and_no_api_key_reaches_the_page(
    page: Any, demo: Demo, screenshots: Path
) -> None:
    sign_in(page, demo)
    sent_headers: list[dict[str, str]] = []
    page.on(
        "request",
        lambda r: sent_headers.append(r.headers) if r.url.endswith("/playground/chat") else None,
    )
    page.goto(demo.url + "/dashboard/playground")
    assert "sk-" not in page.content()
    # Count the updates the reply gets while it streams in.
    page.evaluate(
        """() => { window.__updates = 0; new MutationObserver(() => { window.__updates++; })
        .observe(document.getElementById('chat-log'), {subtree: true, childList: true,
        characterData: true}); }"""
    )
    before = text_of(page, "[data-testid=balance]")
    page.select_option("#p-model", "gpt-5-mini")
    page.fill("#p-prompt", "Tell me a story about a lighthouse keeper and a storm at sea")
    page.click("button:has-text('Send')")
    page.wait_for_selector(".msg.assistant .cost", timeout=TIMEOUT_MS)
    reply = text_of(page, ".msg.assistant")
    assert "cost $0.0" in reply
    assert page.evaluate("window.__updates") > 3  # the text arrived in pieces
    wait_for_change(page, "[data-testid=balance]", before)
    shot(page, screenshots, "09-playground")
    assert sent_headers and all("authorization" not in h for h in sent_headers)
    assert all(h.get("x-csrf-token") for h in sent_headers)
    with sqlite3.connect(demo.db_path) as db:
        sources = [r[0] for r in db.execute("SELECT query_source FROM queries")]
    assert "dashboard" in sources


def test_csrf_and_xss_attempts_fail(page: Any, demo: Demo, screenshots: Path) -> None:
    sign_in(page, demo)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(demo.url + "/dashboard/keys")
    page.fill("#k-name", "<script>alert(1)</script>")
    page.click("button:has-text('Create key')")
    page.wait_for_selector("h2:has-text('created')")
    assert page.locator("td", has_text="<script>alert(1)</script>").count() == 1  # shown as text
    page.goto(demo.url + "/dashboard/activity")
    page.goto(demo.url + "/dashboard/keys")
    assert not dialogs

    # Another site's page posts a form to the dashboard in the signed-in browser.
    attacker = _serve_attacker_page(demo.url)
    try:
        page.goto(attacker)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(500)
    finally:
        pass
    # A script on the dashboard's own origin without the CSRF token is refused too.
    page.goto(demo.url + "/dashboard/keys")
    status = page.evaluate(
        """async () => (await fetch('/dashboard/keys', {method: 'POST',
        headers: {'Content-Type': 'application/x-www-form-urlencoded'},
        body: 'name=no-token&usage_limit_usd=&reset_period=&expire_at='})).status"""
    )
    assert status == 403
    keys = httpx.get(demo.url + "/keys", headers={"x-credit-id": demo.credit_id}).json()["data"]
    names = {k["name"] for k in keys}
    assert "csrf-attack" not in names and "no-token" not in names
    assert not dialogs


def _serve_attacker_page(target: str) -> str:
    """A page on another origin (localhost, another port) that auto-submits a key form."""
    html = f"""<!doctype html><form id=f method=post action="{target}/dashboard/keys">
    <input name=name value=csrf-attack><input name=csrf_token value=guess></form>
    <script>document.getElementById('f').submit()</script>""".encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://localhost:{server.server_port}/"


def test_the_operator_console_shows_the_revenue_from_those_requests(
    page: Any, demo: Demo, screenshots: Path
) -> None:
    page.goto(demo.url + "/console")
    shot(page, screenshots, "10-console-sign-in")
    page.fill("#admin-token", "wrong")
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("text=That is not the admin token.")
    page.fill("#admin-token", demo.admin_token)
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("h1:has-text('Revenue')")
    with sqlite3.connect(demo.db_path) as db:
        spent, requests = db.execute("SELECT SUM(price), COUNT(*) FROM queries").fetchone()
    assert requests >= 2
    assert text_of(page, "[data-testid=revenue]") == usd(int(spent))
    assert text_of(page, "[data-testid=requests]") == f"{requests:,}"
    assert page.locator("td:has-text('gpt-5-mini')").count() >= 1
    shot(page, screenshots, "11-console-revenue")
    page.goto(demo.url + "/console/accounts")
    assert page.locator(f"code:has-text('{demo.account_id}')").count() == 1
    assert demo.credit_id not in page.content()
    page.fill("#g-account", demo.account_id)
    page.fill("#g-amount", "2")
    page.click("button:has-text('Grant')")
    page.wait_for_selector("text=Credit granted.")
    shot(page, screenshots, "12-console-accounts")
    page.goto(demo.url + "/console/topups")
    assert page.locator("td .badge.paid").count() >= 1
    shot(page, screenshots, "13-console-topups")
    page.goto(demo.url + "/console/routes")
    assert page.locator("td:has-text('sim')").count() >= 1
    shot(page, screenshots, "14-console-routes")
    page.goto(demo.url + "/console/ledger")
    page.click("button:has-text('Run the ledger check')")
    page.wait_for_selector("[data-testid=ledger-ok]")
    shot(page, screenshots, "15-console-ledger")
