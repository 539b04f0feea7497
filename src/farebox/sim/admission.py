"""The start of a simulated JSON API call: count it, read its faults (the URL prefix's, then the
body's `sim` object), wait and maybe fail as they say. Each provider answers failures in its own
error shape, given as `reply(status, message)`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from farebox.sim.faults import FaultSpecError, parse_body, parse_prefix
from farebox.sim.gate import admit
from farebox.sim.state import SIM_STATE

ErrorReply = Callable[[int, str], web.Response]


def plain_error(status: int, message: str) -> web.Response:
    """`{"error": message}`, the simplest provider error shape."""
    return web.json_response({"error": message}, status=status)


async def admit_call(
    request: web.Request,
    body: dict[str, Any] | None,
    endpoint: str,
    reply: ErrorReply = plain_error,
) -> web.Response | None:
    """None to go on, or the failure to answer (a bad fault spec is a 400)."""
    state = request.app[SIM_STATE]
    state.receive(endpoint, body or {}, request.headers.get("X-Request-Id"))
    prefix = request.match_info.get("spec", "")
    seen = state.stats.record(prefix, endpoint)
    try:
        faults = parse_prefix(prefix).merged(parse_body((body or {}).get("sim")))
    except FaultSpecError as exc:
        return reply(400, str(exc))
    failure = await admit(state, faults, seen)
    if failure is not None:
        return reply(failure.status, failure.message)
    return None
