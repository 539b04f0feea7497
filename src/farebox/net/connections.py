"""Deadlines for slow clients and a cap on open connections, in uvicorn's httptools protocol.

uvicorn closes a keep-alive connection that stays silent after a response, but sets no deadline
on a request's headers or body: a client trickling a byte every few seconds holds its connection
(and a file descriptor) for ever, and a few hundred of them exhaust the process's file limit.

- Headers must be complete within `header_timeout_s` of the connection opening or of the
  previous response ending, and within `max_header_bytes`; otherwise the connection is closed
  (431 for headers too large).
- A body must arrive within `body_timeout_s` plus one second per `body_min_rate` bytes received
  (Apache mod_reqtimeout's rule: a 25 MB upload at any usable speed passes, a trickle does not);
  otherwise 408 and close. Time the application spends not reading (flow control paused the
  socket) is not counted against the client.
- At most `max_connections` are open. A new connection beyond that closes the one that has
  waited longest for its request headers (an idle keep-alive or a slow client); if every open
  connection has a request in progress, the new one is closed instead. So idle or trickling
  connections can delay, but not starve, `/healthz` or anyone else.

Cost on the hot path: no timer and no clock read per request. The only per-request work is in
`data_received` (count the bytes: header bytes while headers are incomplete, body bytes after).
One timer per process, armed only while connections are open, walks the open connections a few
times per deadline period (about once a second with the defaults: O(open connections)); it reads
where each connection stands from uvicorn's own state and starts a stage's deadline when it
first sees that stage, so a deadline after a keep-alive response starts up to one check late.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import resource
from dataclasses import dataclass
from typing import Any, cast

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from farebox.net.head_first import HeadFirst
from farebox.settings import Settings

log = logging.getLogger("farebox.net")

_WAITING, _BODY, _RUNNING = 0, 1, 2  # for request headers / reading a body / the app's turn
_WATCH_ATTRIBUTE = "farebox_connection_watch"


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float = 10.0
    body_timeout_s: float = 20.0
    body_min_rate: int = 500
    """Bytes per second a body must average, after the first `body_timeout_s`; 0: no extension."""
    max_connections: int = 1000
    max_header_bytes: int = 64 * 1024

    @property
    def tick_s(self) -> float:
        """How often deadlines are checked: a deadline is enforced at most this late."""
        return max(0.05, min(1.0, self.header_timeout_s / 4, self.body_timeout_s / 4))

    @property
    def seconds_per_body_byte(self) -> float:
        return 1.0 / self.body_min_rate if self.body_min_rate > 0 else 0.0


class _Watch:
    """One server's periodic deadline check, and its room-making for new connections."""

    def __init__(
        self, connections: set[Any], limits: ConnectionLimits, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.connections = connections
        self.limits = limits
        self.loop = loop
        self.closed = {"header timeout": 0, "body timeout": 0, "over the limit": 0}
        self._timer: asyncio.TimerHandle | None = None

    def wake(self) -> None:
        if self._timer is None:
            self._timer = self.loop.call_later(self.limits.tick_s, self._tick)

    def _tick(self) -> None:
        self._timer = None
        now = self.loop.time()
        for connection in list(self.connections):
            if isinstance(connection, GuardedHttpToolsProtocol):
                connection.check_deadline(now)
        if any(self.closed.values()):
            log.warning(
                "closed slow or surplus client connections: %s",
                ", ".join(f"{n} {why}" for why, n in self.closed.items() if n),
            )
            self.closed = dict.fromkeys(self.closed, 0)
        if self.connections:
            self.wake()

    def make_room(self, newcomer: GuardedHttpToolsProtocol) -> bool:
        """Close the open connection that has waited longest for its request headers."""
        oldest: GuardedHttpToolsProtocol | None = None
        for connection in self.connections:
            if (
                connection is not newcomer
                and isinstance(connection, GuardedHttpToolsProtocol)
                and connection.stage == _WAITING
                and not connection.transport.is_closing()
                and (oldest is None or connection.deadline < oldest.deadline)
            ):
                oldest = connection
        if oldest is None:
            return False
        oldest.transport.close()
        self.closed["over the limit"] += 1
        return True


def _watch_of(
    state: ServerState, limits: ConnectionLimits, loop: asyncio.AbstractEventLoop
) -> _Watch:
    """The server's watch, made by its first connection (uvicorn has no hook to pass one in)."""
    watch = getattr(state, _WATCH_ATTRIBUTE, None)
    if not isinstance(watch, _Watch):
        watch = _Watch(state.connections, limits, loop)
        setattr(state, _WATCH_ATTRIBUTE, watch)
    return watch


def _error_response(status: bytes, code: str, message: str) -> bytes:
    body = orjson.dumps(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": code,
            }
        }
    )
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the module's deadlines and connection cap.

    Per request it only adds `data_received`'s byte counting and a `HeadFirst` (the response's
    head and first body bytes in one write, net/head_first.py); where a connection stands
    (waiting for headers, reading a body, or the app's) is read from uvicorn's own state by the
    watch, which notices a new stage at its next check and starts that stage's deadline then.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ConnectionLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.watch = _watch_of(server_state, limits, self.loop)
        self.deadline = math.inf
        self.header_bytes = 0
        self.body_bytes = 0
        self._seen: tuple[object, int] = (None, _WAITING)  # the cycle and stage last checked

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.deadline = self.loop.time() + self.limits.header_timeout_s
        self.watch.wake()
        if len(self.connections) > self.limits.max_connections and not self.watch.make_room(self):
            self.watch.closed["over the limit"] += 1
            transport.close()

    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not before:  # a new request: its head goes out with
            cycle.transport = HeadFirst(self.transport, self.loop)  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        if cycle is not None and (cycle.more_body or not cycle.response_complete):
            self.body_bytes += len(data)  # a body, or pipelined requests while the app runs
            super().data_received(data)
            return
        super().data_received(data)
        if self.cycle is not cycle:  # this data completed a request's headers
            self.header_bytes = 0
            self.body_bytes = 0
        elif not self.transport.is_closing():
            self.header_bytes += len(data)
            if self.header_bytes > self.limits.max_header_bytes:
                self.transport.write(
                    _error_response(
                        b"431 Request Header Fields Too Large",
                        "headers_too_large",
                        f"The request's headers exceed {self.limits.max_header_bytes} bytes.",
                    )
                )
                self.transport.close()

    @property
    def stage(self) -> int:
        cycle = self.cycle
        if cycle is None:
            return _WAITING
        if cycle.more_body:  # even if the app has answered already: the rest must still come
            return _BODY
        return _WAITING if cycle.response_complete and not self.pipeline else _RUNNING

    def check_deadline(self, now: float) -> None:
        """Called by the watch: start the deadline of a new stage, or close the connection if
        its client is past the deadline of the current one."""
        if self.transport is None or self.transport.is_closing():
            return
        stage = self.stage
        seen = (self.cycle, stage)
        if seen != self._seen:
            self._seen = seen
            if stage == _WAITING:
                self.deadline = now + self.limits.header_timeout_s
            elif stage == _BODY:
                self.deadline = now + self.limits.body_timeout_s
            else:
                self.deadline = math.inf
            return
        if stage == _WAITING:
            if now > self.deadline:
                self.watch.closed["header timeout"] += 1
                self.transport.close()
            return
        if stage == _RUNNING:
            return
        if self.flow.read_paused:  # the app is not reading the body yet: not the client's fault
            self.deadline += self.limits.tick_s
            return
        if now > self.deadline + self.body_bytes * self.limits.seconds_per_body_byte:
            self.watch.closed["body timeout"] += 1
            if not self.cycle.response_started:
                self.transport.write(
                    _error_response(
                        b"408 Request Timeout",
                        "request_timeout",
                        "The request body arrived too slowly: send it within "
                        f"{self.limits.body_timeout_s:g} s plus 1 s per "
                        f"{self.limits.body_min_rate} bytes.",
                    )
                )
            self.transport.close()


def raise_open_file_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit from %d to %d", soft, target)
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def connection_cap(configured: int, file_limit: int) -> int:
    """`configured`, but leaving a quarter of the file limit (at least 64) for everything else
    the process opens: database connections, upstream pools, files."""
    if file_limit == resource.RLIM_INFINITY or file_limit <= 0:
        return configured
    return max(1, min(configured, file_limit - max(64, file_limit // 4)))


def connection_limits(settings: Settings, file_limit: int | None = None) -> ConnectionLimits:
    files = file_limit if file_limit is not None else resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return ConnectionLimits(
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        body_min_rate=settings.body_min_rate,
        max_connections=connection_cap(settings.max_connections, files),
        max_header_bytes=settings.max_header_bytes,
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What every farebox server passes to uvicorn (serve, --workers, --demo, the tests)."""
    protocol = functools.partial(GuardedHttpToolsProtocol, limits=connection_limits(settings))
    return {
        # A partial of a module-level class: it pickles, so `--workers` processes get it too.
        "http": cast("type[asyncio.Protocol]", protocol),
        "access_log": False,
        # X-Forwarded-For is read by the app with FAREBOX_TRUSTED_PROXIES (net/client_ip.py).
        "proxy_headers": False,
        # No route speaks WebSocket: an Upgrade header is ignored, and the websockets library
        # is never imported.
        "ws": "none",
        # No `server: uvicorn` on every response: it tells a client nothing it needs, and
        # every header costs uvicorn two regex checks per response.
        "server_header": False,
    }


def uvicorn_config(app: Any, settings: Settings, log_level: str, loop: str = "uvloop") -> Config:
    """The uvicorn Config of a farebox server on the settings' host and port (serve, each
    forked worker, the demo)."""
    return Config(
        app,
        host=settings.host,
        port=settings.port,
        loop=loop,
        log_level=log_level,
        **uvicorn_options(settings),
    )
