"""Fixtures shared by every test: databases of both kinds, a simulator, a live gateway; and the
two test tiers.

Tiers: a test is *slow* when it carries `@pytest.mark.slow` or lives under one of SLOW_PATHS
(tests that start external programs, kill processes, race replicas or run long). `pytest` runs
the fast tier and says how many slow tests it left out; `.ci/run` runs both tiers. A slow test
still runs when its file (or node id) is named on the command line, and `-m` given on the
command line decides alone (`pytest -m slow`, `pytest -m "slow or not slow"`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from farebox.sim.config import SimConfig
from farebox.sim.server import SimServer

from support import (
    Gateway,
    database_url,
    require_db,
    running_gateway,
    running_sim,
    test_catalog,
)

DB_KINDS = ["sqlite", "postgresql"]

TESTS = Path(__file__).resolve().parent
SLOW_PATHS: dict[str, str] = {
    "e2e": "kills, restarts and races gateway processes",
    "replicas": "drains, kills and restarts gateway processes behind haproxy",
    "claude_code": "runs the real Claude Code CLI (npm, ~400 MB, installed by .ci/run)",
    "payments/test_topup_lnbits.py": "starts a real LNbits (installed by .ci/run)",
    "pay402/test_lnbits.py": "starts a real LNbits (installed by .ci/run)",
    "pay402/test_clients.py": "runs npm and LNbits clients (installed by .ci/run)",
    "modalities/test_local.py": "loads the local models (torch, installed by .ci/run)",
    "cashu/test_cashu_admin.py": "runs real nutshell mints (installed by .ci/run)",
    "cashu/test_cashu_only.py": "runs real nutshell mints (installed by .ci/run)",
    "cashu/test_cashu_pay.py": "runs real nutshell mints (installed by .ci/run)",
    "private/test_other_clients.py": "runs npm ehbp (installed by .ci/run) and tinfoil-ehbp",
    "private/test_canary.py": "runs `farebox serve` processes and scans what they write",
    "private/test_demo.py": "runs `farebox serve --demo` and `farebox private-proxy` processes",
    "dashboard/test_browser.py": "drives Chromium (installed by .ci/run) against `serve --demo`",
    "net/test_egress_proxy.py": "starts Debian's tinyproxy (installed by .ci/run)",
    "fuzz": "schemathesis against a live gateway from its /openapi.json (about a minute)",
    "observe/test_workers.py": "runs `farebox serve --workers 2` and `farebox sim` processes",
}
"""Paths under tests/ whose every test is slow, and why. Add a folder or file here, or mark
single tests with @pytest.mark.slow."""


def _is_slow_path(relative: str) -> bool:
    return any(relative == p or relative.startswith(p.rstrip("/") + "/") for p in SLOW_PATHS)


def _named_explicitly(item: pytest.Item, named: list[Path]) -> bool:
    """The item's file, or a folder below tests/ that holds it, was named on the command line."""
    return any(
        item.path == path or (path != TESTS and path.is_dir() and item.path.is_relative_to(path))
        for path in named
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark SLOW_PATHS' tests slow; leave the slow tier out unless asked for (see above)."""
    for item in items:
        if item.path.is_relative_to(TESTS) and _is_slow_path(
            item.path.relative_to(TESTS).as_posix()
        ):
            item.add_marker(pytest.mark.slow)
    if config.option.markexpr:
        return
    named = [Path(arg.split("::", 1)[0]).resolve() for arg in config.args]
    keep: list[pytest.Item] = []
    left_out: list[pytest.Item] = []
    for item in items:
        if item.get_closest_marker("slow") is None or _named_explicitly(item, named):
            keep.append(item)
        else:
            left_out.append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = keep
        config.stash[SLOW_LEFT_OUT] = len(left_out)


SLOW_LEFT_OUT = pytest.StashKey[int]()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    if config.option.markexpr or hasattr(config, "workerinput"):
        return
    left_out = config.stash.get(SLOW_LEFT_OUT, 0)
    distributed = config.getoption("numprocesses", None) not in (None, 0)
    if left_out or distributed:  # xdist's workers collect, so the count is theirs to know
        count = f"{left_out} slow tests" if left_out else "the slow tests"
        terminalreporter.write_line(
            f"fast tier: {count} not run (.ci/run runs them; "
            '`pytest -m "slow or not slow"` runs both tiers here)'
        )


@pytest.fixture(params=DB_KINDS)
def db_kind(request: pytest.FixtureRequest) -> str:
    require_db(request.param)
    return str(request.param)


@pytest.fixture
def db_url(db_kind: str, tmp_path: Path) -> Iterator[str]:
    with database_url(db_kind, tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def sim() -> Iterator[SimServer]:
    with running_sim(SimConfig(seed=1)) as (server, _loop):
        yield server


@pytest.fixture(scope="module", params=DB_KINDS)
def gateway(
    request: pytest.FixtureRequest, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """A live gateway per test module and database kind (tests make their own accounts)."""
    require_db(request.param)
    tmp = tmp_path_factory.mktemp("gw")
    with (
        database_url(request.param, tmp) as url,
        running_gateway(url, test_catalog(sim.url)) as gw,
    ):
        yield gw
