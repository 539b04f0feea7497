"""`farebox serve --workers N`: load once, fork the workers, supervise them.

The parent binds the listening socket, imports the serving modules and builds the token tables
the catalog names (billing/_bpecount.c: about 4 MB for o200k_base, 2 MB for cl100k_base), then
freezes what it built out of the cyclic collector's reach (`gc.freeze()`: a collection would
otherwise write to every object's header and unshare its page) and forks N workers. What the
parent built is never written after, so its pages stay shared between the workers (copy on
write); each worker builds its own app (database engine, connections, threads, event loop: none
of these may exist at fork time) and serves the inherited socket with the same draining server
as a single process (net/drain_server.py).

The parent then only supervises:
- SIGTERM or Ctrl-C: SIGTERM to every worker, each drains (/readyz 503 for
  FAREBOX_DRAIN_NOTICE_S, stops accepting, requests in flight get FAREBOX_DRAIN_S, streams still
  running are ended and settled); the parent waits for them, bounded, and exits 0. A second
  signal is passed on as it is (a second Ctrl-C makes uvicorn stop at once).
- A worker that dies otherwise is logged and replaced; one that dies soon after it started is
  replaced after a growing pause (0.5 s doubling up to 30 s), so a crash loop does not spin.
- Prometheus' multiprocess files of a dead worker are marked dead (observe/multiproc.py).

Signals are blocked in the parent and taken with `sigtimedwait`, so nothing runs in a signal
handler and a fork never races one; the workers unblock them first thing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import importlib
import logging
import os
import random
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from farebox.net.drain_server import CUT_GRACE_S, install_exit_zero

if TYPE_CHECKING:
    from farebox.catalog.model import Catalog
    from farebox.settings import Settings

log = logging.getLogger("farebox.prefork")

SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
STOP_GRACE_S = 10.0
"""How long the parent waits beyond a worker's own bound (notice + drain + cut grace) before it
kills what is left."""
HEALTHY_S = 10.0
"""A worker that ran this long before dying is replaced at once; sooner, after a backoff."""
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
NEVER_STARTED = 3
"""The exit status of a worker whose server never started (uvicorn's, as serve_draining's)."""
PRELOAD = (
    "uvloop",
    "uvicorn.lifespan.on",
    "uvicorn.protocols.http.httptools_impl",
    "farebox.app",
    "farebox.net.drain_server",
)
"""Modules every worker imports: imported once, in the parent."""
_PR_SET_PDEATHSIG = 1


def preload(tokenizers: Iterable[str]) -> None:
    """Import the serving modules and build the named token tables, in the parent."""
    from farebox.billing.tokens import encoder

    for name in PRELOAD:
        importlib.import_module(name)
    for name in sorted(set(tokenizers)):
        encoder(name)  # encoder() keeps it: the workers' create_app finds it built


@dataclass
class Worker:
    pid: int
    slot: int
    started: float
    serving: bool = False  # it said so, once its server was up


@dataclass
class Supervisor:
    """Forks `workers` children that each run `child(announce)` (which must not return, and
    calls `announce()` once it serves) and keeps that many running until told to stop."""

    workers: int
    child: Callable[[Callable[[], None]], NoReturn]
    stop_timeout_s: float
    on_exit: Callable[[int], None] = lambda pid: None
    """Called with each reaped worker's pid (the metrics' mark_process_dead)."""
    close_on_stop: list[socket.socket] = field(default_factory=list)
    running: dict[int, Worker] = field(default_factory=dict)
    failures: dict[int, int] = field(default_factory=dict)
    due: dict[int, float] = field(default_factory=dict)  # slot -> when to start it again
    ever_served: bool = False
    _ready: tuple[int, int] = (-1, -1)  # the pipe the workers announce themselves on
    _heard: bytes = b""

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT; 0 when every worker drained and exited 0, 3 when
        the first workers could not start."""
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        self._ready = os.pipe()
        os.set_blocking(self._ready[0], False)
        try:
            _check_single_threaded()
            for slot in range(self.workers):
                self._fork(slot)
            return self._supervise()
        finally:
            for fd in self._ready:
                os.close(fd)
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def _supervise(self) -> int:
        while True:
            now = time.monotonic()
            timeout = min((t - now for t in self.due.values()), default=1.0)
            info = signal.sigtimedwait(SIGNALS, max(0.0, min(timeout, 1.0)))
            failed = self._reap()
            if failed is not None:
                return self._stop(failed)
            if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
                return self._stop(None)
            now = time.monotonic()
            for slot, when in list(self.due.items()):
                if when <= now:
                    del self.due[slot]
                    self._fork(slot)

    def _fork(self, slot: int) -> None:
        try:
            pid = os.fork()
        except OSError as exc:  # out of memory or processes: try again later
            log.error("could not fork worker %d: %s; trying again in %g s", slot, exc, 5.0)
            self.due[slot] = time.monotonic() + 5.0
            return
        if pid == 0:
            os.close(self._ready[0])
            self.child(self._announce)  # never returns
        self.running[pid] = Worker(pid, slot, time.monotonic())
        log.info("worker %d forked (pid %d)", slot, pid)

    def _announce(self) -> None:
        """In a worker: tell the parent it serves."""
        os.write(self._ready[1], struct.pack("i", os.getpid()))

    def _listen(self) -> None:
        """Read which workers said they serve."""
        while True:
            try:
                chunk = os.read(self._ready[0], 4096)
            except BlockingIOError:
                break
            if not chunk:
                break
            self._heard += chunk
        size = struct.calcsize("i")
        while len(self._heard) >= size:
            (pid,) = struct.unpack("i", self._heard[:size])
            self._heard = self._heard[size:]
            worker = self.running.get(pid)
            if worker is not None:
                worker.serving = True
                self.ever_served = True

    def _reap(self) -> int | None:
        """Collect dead workers and schedule their replacements; a status to exit with when
        the first workers cannot start at all."""
        while True:
            self._listen()  # before waitpid: a worker that said it serves, then died, did serve
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return None
            if pid == 0:
                return None
            worker = self.running.pop(pid, None)
            self.on_exit(pid)
            if worker is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            how = f"status {code}" if code >= 0 else f"signal {signal.Signals(-code).name}"
            if not worker.serving and not self.ever_served:
                log.error("worker pid %d could not start (%s): stopping", pid, how)
                return NEVER_STARTED
            lived = time.monotonic() - worker.started
            healthy = worker.serving and lived >= HEALTHY_S
            fails = 0 if healthy else self.failures.get(worker.slot, 0) + 1
            self.failures[worker.slot] = fails
            pause = 0.0 if fails == 0 else min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (fails - 1))
            log.warning(
                "worker pid %d exited unexpectedly (%s, after %.1f s%s); starting another%s",
                pid,
                how,
                lived,
                "" if worker.serving else ", before it served",
                f" in {pause:g} s" if pause else "",
            )
            self.due[worker.slot] = time.monotonic() + pause

    def _stop(self, status: int | None) -> int:
        """SIGTERM every worker, wait for them (bounded), kill what is left."""
        for sock in self.close_on_stop:  # the workers keep their own copies while they drain
            sock.close()
        self.due.clear()
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        clean = True
        while self.running:
            left = deadline - time.monotonic()
            if left <= 0:
                log.error(
                    "workers %s still running after %g s: killed",
                    sorted(self.running),
                    self.stop_timeout_s,
                )
                self._signal_all(signal.SIGKILL)
                clean = False
                deadline = time.monotonic() + 5.0
            info = signal.sigtimedwait(SIGNALS, max(0.0, min(left, 1.0)))
            if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
                self._signal_all(info.si_signo)  # a second Ctrl-C: the workers stop at once
            clean = self._collect() and clean
        if status is not None:
            return status
        return 0 if clean else 1

    def _collect(self) -> bool:
        """Reap what exited while stopping; False if one did not exit with 0."""
        clean = True
        while self.running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.running.clear()
                break
            if pid == 0:
                break
            worker = self.running.pop(pid, None)
            self.on_exit(pid)
            code = os.waitstatus_to_exitcode(status)
            if worker is not None and code not in (0, NEVER_STARTED):
                log.warning("worker pid %d stopped with status %d", pid, code)
                clean = False
        return clean

    def _signal_all(self, signo: int) -> None:
        for pid in list(self.running):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signo)


def _check_single_threaded() -> None:
    """A thread in the parent at fork time would be missing in the workers, with whatever lock
    it held: start-up must leave none."""
    others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if others:
        log.warning("threads running in the parent before fork: %s", ", ".join(others))


def become_worker(parent: int) -> None:
    """The first steps in a forked worker: signals back to normal, dies with the parent,
    its own random sequence."""
    install_exit_zero()  # a SIGTERM before uvicorn takes over (while the app builds): status 0
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    libc_name = ctypes.util.find_library("c") if sys.platform == "linux" else None
    if libc_name is not None:  # SIGTERM (so a drain) if the parent dies
        libc = ctypes.CDLL(libc_name, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # it died before prctl
        os._exit(0)
    random.seed()  # also done by the random module at fork; said here, for what must differ


def worker_exit(run: Callable[[], int]) -> NoReturn:
    """Run a worker's body and leave with os._exit: the parent's atexit hooks (its metrics
    directory's removal among them) must not run in a worker."""
    code = 1
    try:
        code = run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed pipe: nothing more to say
                stream.flush()
    os._exit(code)


def serve_workers(
    settings: Settings, catalog: Catalog, sock: socket.socket, workers: int, log_level: str
) -> int:
    """Preload, fork `workers` draining servers on `sock`, supervise them; the exit status."""
    from farebox.observe import multiproc

    preload(m.tokenizer for m in catalog.models.values())
    parent = os.getpid()
    metrics_dir = os.environ.get(multiproc.ENV) or None

    def child(announce: Callable[[], None]) -> NoReturn:
        become_worker(parent)
        worker_exit(lambda: _serve_one(settings, catalog, sock, log_level, announce))

    def dead(pid: int) -> None:
        if metrics_dir is not None:
            multiproc.mark_dead(pid, metrics_dir)

    notice = max(0.0, settings.drain_notice_s)
    bound = notice + max(0.0, settings.drain_s) + CUT_GRACE_S + STOP_GRACE_S
    supervisor = Supervisor(workers, child, bound, on_exit=dead, close_on_stop=[sock])
    gc.collect()
    gc.freeze()  # what was built so far stays out of the workers' collections
    return supervisor.run()


def _serve_one(
    settings: Settings,
    catalog: Catalog,
    sock: socket.socket,
    log_level: str,
    announce: Callable[[], None],
) -> int:
    """One worker: its own app on the inherited socket, draining on SIGTERM."""

    from farebox.app import create_app
    from farebox.net.connections import uvicorn_config
    from farebox.net.drain_server import DrainingServer
    from farebox.observe import multiproc

    class WorkerServer(DrainingServer):  # uvicorn raises SIGTERM again once drained: status 0
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                announce()

    multiproc.adopt_after_fork()
    app = create_app(settings, catalog=catalog)
    config = uvicorn_config(app, settings, log_level)
    server = WorkerServer(config, settings.drain_s, settings.drain_notice_s)
    server.run(sockets=[sock])
    return 0 if server.started else NEVER_STARTED
