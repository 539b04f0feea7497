"""The simulator's own endpoints: `GET /health`, `GET /sim/stats`, `GET /sim/requests`,
`POST /sim/reset`."""

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


async def received(request: web.Request) -> web.Response:
    """The last chat, messages, search and data requests received, oldest first: `{"data": [{"endpoint", "body",
    "request_id"}]}` (`request_id`: the X-Request-Id header, or null);
    `?endpoint=messages` keeps one endpoint's, `?last=N` the last N."""
    state = request.app[SIM_STATE]
    endpoint = request.query.get("endpoint")
    raw_last = request.query.get("last", "")
    last = int(raw_last) if raw_last.isascii() and raw_last.isdigit() and len(raw_last) < 6 else 0
    rows = [
        {"endpoint": name, "body": body, "request_id": request_id}
        for (name, body), request_id in zip(state.received, state.request_ids, strict=True)
        if endpoint is None or name == endpoint
    ]
    return json_response({"data": rows[-last:] if last else rows})


async def reset(request: web.Request) -> web.Response:
    """Clear the counts (and with them every `fail_first` progress) and the bodies kept."""
    state = request.app[SIM_STATE]
    state.stats.reset()
    state.received.clear()
    state.request_ids.clear()
    return json_response({"status": "reset"})


ROUTES: tuple[web.RouteDef, ...] = (
    web.get("/health", health),
    web.get("/sim/stats", stats, allow_head=False),
    web.get("/sim/requests", received, allow_head=False),
    web.post("/sim/reset", reset),
)
