"""Fixtures for the dashboard's tests: a real browser (Debian's chromium driven by Playwright),
skipped with a reason when it is missing, except under CI=true, where that fails."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import missing_tool

CHROMIUM = os.environ.get("FAREBOX_CHROMIUM", "/usr/bin/chromium")
# As the machine's notes say: without the background-networking flags Chromium keeps dialling
# out, and this network refuses it.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("FAREBOX_SCREENSHOTS", "test-screenshots"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module; Playwright gives it a fresh, empty --user-data-dir.

    Module scope, not session: Playwright's sync API keeps an event loop running in this thread
    while it is open, and the async tests of other modules need the thread's loop free."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_tool("the Python playwright package is not installed")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        missing_tool(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A new browser context (its own cookies) and page for each test; a script error or a
    Content-Security-Policy violation on any page fails the test."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    tab.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    try:
        yield tab
    finally:
        context.close()
    assert not problems, problems


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
