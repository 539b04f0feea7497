"""Assembling and running a simulator: the aiohttp app, a started server, the blocking runner."""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import Callable
from functools import partial

from aiohttp import web

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
    uvloop = None  # type: ignore[assignment]

from farebox.sim import (
    anthropic_messages,
    control,
    data_people,
    data_places,
    data_social,
    data_web,
    deepgram,
    elevenlabs,
    fal_queue,
    openai_audio,
    openai_chat,
    openai_embeddings,
    openai_images,
    openai_models,
    runway,
    search,
)
from farebox.sim.config import SimConfig
from farebox.sim.state import SIM_STATE, SimState
from farebox.sim.tokens import load_encoding

FAULT_PREFIX = "/sim/{spec}"
"""Mounted before every API route: `/sim/status=503/v1/chat/completions`."""

API_ROUTES: tuple[web.RouteDef, ...] = (
    *openai_chat.ROUTES,
    *openai_models.ROUTES,
    *openai_embeddings.ROUTES,
    *openai_images.ROUTES,
    *fal_queue.ROUTES,
    *runway.ROUTES,
    *anthropic_messages.ROUTES,
    *openai_audio.ROUTES,
    *deepgram.ROUTES,
    *elevenlabs.ROUTES,
    *search.ROUTES,
    *data_places.ROUTES,
    *data_people.ROUTES,
    *data_web.ROUTES,
    *data_social.ROUTES,
)
"""One entry per wire-format module; each is served bare and under `FAULT_PREFIX`."""

MAX_BODY_BYTES = 64 * 1024 * 1024
SHUTDOWN_TIMEOUT_S = 0.5
"""Handlers still running at close (hung requests, slow streams) are cancelled after this."""


def create_sim_app(config: SimConfig) -> web.Application:
    """The simulator as an aiohttp application, with its own state and counters."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SIM_STATE] = SimState(config)
    fal_queue.setup(app)
    runway.setup(app)
    anthropic_messages.setup(app)
    app.add_routes(control.ROUTES)
    for route in API_ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
        app.router.add_route(route.method, FAULT_PREFIX + route.path, route.handler)
    return app


class SimServer:
    """A running simulator; `await close()` stops it (or use it as an async context manager)."""

    def __init__(
        self,
        runner: web.AppRunner,
        app: web.Application,
        host: str,
        port: int,
        scheme: str = "http",
    ) -> None:
        self._runner = runner
        self.app = app
        self.host = host
        self.port = port
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{shown}:{port}"

    @property
    def state(self) -> SimState:
        """The app's counters and config, for tests that look inside."""
        return self.app[SIM_STATE]

    async def close(self) -> None:
        """Stop listening and cancel what is still running."""
        await self._runner.cleanup()

    async def __aenter__(self) -> SimServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _runner_options() -> dict[str, object]:
    return {
        "access_log": None,
        "handler_cancellation": True,
        "shutdown_timeout": SHUTDOWN_TIMEOUT_S,
    }


async def start_sim(
    config: SimConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
) -> SimServer:
    """Start a simulator on `host:port` (port 0 picks a free one) in the running loop; over TLS
    with `ssl_context` (the egress proxy's tests)."""
    await asyncio.to_thread(load_encoding)  # the first load takes ~0.5 s; keep the loop free
    app = create_sim_app(config)
    runner = web.AppRunner(app, **_runner_options())  # type: ignore[arg-type]
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, ssl_context=ssl_context)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = runner.addresses[0][1]
    return SimServer(runner, app, host, bound_port, "https" if ssl_context else "http")


def _new_loop() -> asyncio.AbstractEventLoop:
    return uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()


def run_sim(
    config: SimConfig,
    host: str,
    port: int,
    setup: Callable[[web.Application], None] | None = None,
) -> None:
    """Serve a simulator until interrupted (Ctrl-C or SIGTERM), on uvloop when installed.

    `setup` may add start-up and clean-up hooks (the enclave's, for one)."""
    app = create_sim_app(config)
    if setup is not None:
        setup(app)
    web.run_app(
        app,
        host=host,
        port=port,
        backlog=1024,
        loop=_new_loop(),
        print=partial(print, file=sys.stderr, flush=True),
        **_runner_options(),  # type: ignore[arg-type]
    )
