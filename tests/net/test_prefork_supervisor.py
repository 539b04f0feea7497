"""The pre-fork supervisor (net/prefork.py) with stand-in workers, in a process of its own:
workers that cannot start stop it with status 3; a worker that dies before it serves, once
another serves, is replaced after a pause; SIGTERM reaches every worker and the parent exits 0.
(tests/e2e/test_prefork.py runs the real `farebox serve --workers 2`.)"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import logging, os, signal, sys, time
    from farebox.net.prefork import Supervisor

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    mode = sys.argv[1]
    tries = sys.argv[2]

    def child(announce):  # SIGTERM stays blocked (as the parent forked it): sigwait takes it
        with open(tries, "a") as f:
            f.write(f"{os.getpid()}\\n")
        attempt = open(tries).read().split().index(str(os.getpid()))
        if mode == "never":
            os._exit(1)
        if attempt in (1, 2):  # fails once the first one serves (so the parent knows one can)
            deadline = time.monotonic() + 20
            while not os.path.exists(tries + ".served") and time.monotonic() < deadline:
                time.sleep(0.01)
            os._exit(1)
        announce()
        open(tries + ".served", "w").close()
        os.write(1, f"serving {os.getpid()}\\n".encode())  # one write: workers share the log
        signal.sigwait({signal.SIGTERM})
        os.write(1, f"drained {os.getpid()}\\n".encode())
        os._exit(0)

    sys.exit(Supervisor(2, child, 20.0).run())
    """
)


def _start(mode: str, tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    log = tmp_path / "supervisor.log"
    out = log.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, mode, str(tmp_path / "tries")],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    out.close()
    return proc, log


def _wait_log(log: Path, ok: Callable[[str], bool]) -> str:
    deadline = time.monotonic() + 30
    while True:
        text = log.read_text()
        if ok(text):
            return text
        assert time.monotonic() < deadline, text
        time.sleep(0.05)


def test_workers_that_cannot_start_stop_the_parent_with_status_3(tmp_path: Path) -> None:
    proc, log = _start("never", tmp_path)
    try:
        assert proc.wait(30) == 3, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "could not start (status 1): stopping" in log.read_text()


def test_a_worker_dying_before_it_serves_is_replaced_then_sigterm_drains_all(
    tmp_path: Path,
) -> None:
    proc, log = _start("second-fails", tmp_path)
    try:
        text = _wait_log(log, lambda t: t.count("serving ") == 2)
        assert "before it served); starting another in 0.5 s" in text
        assert "starting another in 1 s" in text  # the same slot again: a longer pause
        serving = {int(pid) for pid in re.findall(r"serving (\d+)", text)}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    drained = {int(pid) for pid in re.findall(r"drained (\d+)", text)}
    assert drained == serving
    assert not any(Path(f"/proc/{pid}").exists() for pid in serving)
    assert len((tmp_path / "tries").read_text().split()) == 4
