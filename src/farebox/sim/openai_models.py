"""OpenAI's model list (`GET /v1/models`): the ids in `SimConfig.models`."""

from __future__ import annotations

from aiohttp import web

from farebox.sim.faults import FaultSpecError, parse_prefix
from farebox.sim.gate import admit
from farebox.sim.openai_base import check_auth, error_response, failure_response, json_response
from farebox.sim.state import SIM_STATE

PATHS = ("/v1/models", "/models")
ENDPOINT = "models"
CREATED = 1_700_000_000


async def list_models(request: web.Request) -> web.StreamResponse:
    """`GET [/sim/<faults>]/v1/models`; a URL prefix's faults apply here too."""
    state = request.app[SIM_STATE]
    prefix = request.match_info.get("spec", "")
    seen = state.stats.record(prefix, ENDPOINT)
    denied = check_auth(request, state.config)
    if denied is not None:
        return denied
    try:
        faults = parse_prefix(prefix)
    except FaultSpecError as exc:
        return error_response(400, str(exc), param="sim")
    failure = await admit(state, faults, seen)
    if failure is not None:
        return failure_response(failure)
    data = [
        {"id": model, "object": "model", "created": CREATED, "owned_by": "farebox-sim"}
        for model in state.config.models
    ]
    return json_response({"object": "list", "data": data})


ROUTES: tuple[web.RouteDef, ...] = tuple(
    web.get(path, list_models, allow_head=False) for path in PATHS
)
