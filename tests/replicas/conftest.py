"""Fixtures for the replica tests: a `farebox sim` for the folder, and teardown that stops every
process a test started (printing their logs when the test failed). The processes, the SSE client
and the ledger reads are the end-to-end harness's (tests/e2e/e2e_support.py)."""

from __future__ import annotations

from e2e_support import (  # noqa: F401 (hook and fixtures registered here)
    pytest_runtest_makereport,
    reap_everything,
    reap_processes,
    sim_proc,
)
