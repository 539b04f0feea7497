"""Fixtures for the replica tests: a `farebox sim` for the folder, and teardown that stops every
process a test started (printing their logs when the test failed). The processes, the SSE client
and the ledger reads are the end-to-end harness's (tests/e2e/e2e_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from e2e_support import LIVE, Proc, start_sim


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report


@pytest.fixture(scope="session")
def sim_proc() -> Iterator[Proc]:
    proc = start_sim("--tokens-per-second", "200", "--output-tokens", "40")
    proc.shared = True
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(autouse=True)
def reap_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Stop what the test started; on failure print every live process's log."""
    before = len(LIVE)
    yield
    failed = any(
        getattr(getattr(request.node, "rep_" + when, None), "failed", False)
        for when in ("setup", "call")
    )
    if failed:
        for proc in LIVE:
            print(f"\n----- {proc.name} (pid {proc.pid}, rc {proc.popen.poll()}) log -----")
            print(proc.log())
    for proc in LIVE[before:]:
        if not proc.shared:
            proc.stop()


@pytest.fixture(scope="session", autouse=True)
def reap_everything() -> Iterator[None]:
    """Nothing outlives the session (nor its log files: a failed test's were printed)."""
    yield
    for proc in LIVE:
        proc.stop()
        proc.log_path.unlink(missing_ok=True)
