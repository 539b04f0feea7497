"""prometheus_client's multiprocess mode, for `farebox serve --workers N`.

Each worker writes its counters and histograms to memory-mapped files in one directory and a
scrape, answered by whichever worker the kernel hands the connection to, sums them all. The mode
is chosen when prometheus_client is first imported, from PROMETHEUS_MULTIPROC_DIR: `serve` sets
it (a fresh temporary directory, removed at exit) before the workers start, or, when the
operator set it, empties that directory of the previous run's files first.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from prometheus_client import values

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_for_workers() -> str:
    """The directory the workers share, set in the environment they inherit."""
    given = os.environ.get(ENV, "").strip()
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # a previous run's counts must not add to this one's
            stale.unlink(missing_ok=True)
        return str(path)
    made = tempfile.mkdtemp(prefix="farebox-metrics-")
    os.environ[ENV] = made
    atexit.register(shutil.rmtree, made, True)
    return made


def active_dir() -> str | None:
    """This process's multiprocess directory, or None when its values live in memory. Read
    from prometheus_client itself: the mode it chose at import is what counts."""
    if values.ValueClass is values.MutexValue:
        return None
    return os.environ.get(ENV) or None


def forget_on_exit(path: str) -> None:
    """When this worker exits, drop it from the live-gauge view (breaker states)."""
    from prometheus_client import multiprocess

    pid = os.getpid()
    atexit.register(multiprocess.mark_process_dead, pid, path)


def adopt_after_fork() -> None:
    """In a worker forked from `serve --workers N` (net/prefork.py): choose the mode again.

    The parent imported prometheus_client before it set PROMETHEUS_MULTIPROC_DIR, so the mode
    chosen then was in-memory; a forked worker must write the shared files like a fresh process
    would (no metric exists before the worker builds its app)."""
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def mark_dead(pid: int, path: str) -> None:
    """A worker `pid` has exited: drop it from the live-gauge view (its counts stay)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
