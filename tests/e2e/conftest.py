"""Fixtures for the end-to-end tests: one `farebox sim` process for the folder, and teardown that
kills every process a test started (printing their logs when the test failed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e_support import (  # noqa: F401 (hook and fixtures registered here)
    INCREMENT_TOKENS,
    LIVE,
    SLOW_MODELS,
    Cluster,
    Ledger,
    Proc,
    pytest_runtest_makereport,
    reap_everything,
    reap_processes,
    require_pg,
    serve_env,
    sim_proc,
    spawn_serve,
    start_sim,
    wait_serve,
    write_catalog,
)
from support import fresh_pg_database


@pytest.fixture(scope="session")
def catalog_file(sim_proc: Proc, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    return write_catalog(tmp_path_factory.mktemp("e2e") / "catalog.json", sim_proc.url, SLOW_MODELS)


@pytest.fixture(scope="session")
def cluster(catalog_file: Path) -> Iterator[Cluster]:
    """Two gateways sharing one fresh PostgreSQL database and the catalog (default timeouts)."""
    require_pg()
    with fresh_pg_database() as url:
        env = serve_env(url, catalog_file, stream_increment_tokens=INCREMENT_TOKENS)
        # Both start at once on the fresh database (migrations take an advisory lock).
        servers = [spawn_serve("serve-a", env), spawn_serve("serve-b", env)]
        ledger = Ledger(url)
        try:
            servers = [wait_serve(s, env) for s in servers]
            for s in servers:
                s.shared = True
            yield Cluster(servers, env, ledger)
        finally:
            for s in servers:
                s.stop()
            ledger.close()
