"""The start every media endpoint of the simulator shares: count, authenticate, apply faults.

Each vendor authenticates its own way (OpenAI `Bearer`, Deepgram `Token`, fal `Key`,
ElevenLabs `xi-api-key`); faults come from the URL prefix and, for JSON bodies, a `sim` field.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from farebox.sim.faults import Faults, FaultSpecError, parse_body, parse_prefix
from farebox.sim.gate import admit
from farebox.sim.openai_base import error_response, failure_response
from farebox.sim.state import SIM_STATE, SimState


def _credential(request: web.Request, scheme: str) -> str | None:
    if scheme == "xi-api-key":
        return request.headers.get("xi-api-key") or None
    given, _, value = request.headers.get("Authorization", "").partition(" ")
    if given.lower() != scheme.lower() or not value.strip():
        return None
    return value.strip()


async def enter(
    request: web.Request, endpoint: str, scheme: str = "Bearer", body: dict[str, Any] | None = None
) -> tuple[SimState, Faults] | web.Response:
    """(state, faults) for a request that may proceed, or the error reply to send."""
    state = request.app[SIM_STATE]
    prefix = request.match_info.get("spec", "")
    seen = state.stats.record(prefix, endpoint)
    key = _credential(request, scheme)
    if key is None:
        hint = "xi-api-key: KEY" if scheme == "xi-api-key" else f"Authorization: {scheme} KEY"
        return error_response(401, f"Missing credentials: send '{hint}'.")
    if state.config.api_key is not None and key != state.config.api_key:
        return error_response(401, "Incorrect API key provided to the simulator.")
    try:
        faults = parse_prefix(prefix)
        if body is not None:
            faults = faults.merged(parse_body(body.pop("sim", None)))
    except FaultSpecError as exc:
        return error_response(400, str(exc), param="sim")
    failure = await admit(state, faults, seen)
    if failure is not None:
        return failure_response(failure)
    return state, faults
