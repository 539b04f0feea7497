"""The simulator's own endpoints: `GET /health`, `GET /sim/stats`, `POST /sim/reset`."""

from __future__ import annotations

from aiohttp import web

from farebox.sim.openai_base import json_response
from farebox.sim.state import SIM_STATE


async def health(request: web.Request) -> web.Response:
    """Always `{"status": "ok"}`; never counted, never faulted."""
    return json_response({"status": "ok"})


async def stats(request: web.Request) -> web.Response:
    """Request counts: `{"requests", "by_prefix", "by_endpoint"}`."""
    return json_response(request.app[SIM_STATE].stats.snapshot())


async def reset(request: web.Request) -> web.Response:
    """Clear the counts (and with them every `fail_first` progress)."""
    request.app[SIM_STATE].stats.reset()
    return json_response({"status": "reset"})


ROUTES: tuple[web.RouteDef, ...] = (
    web.get("/health", health),
    web.get("/sim/stats", stats, allow_head=False),
    web.post("/sim/reset", reset),
)
