"""POST /v1/videos (submit a job) and GET /v1/videos/{id} (202 while running, 200 when done)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.requests import read_json, require_key
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.money import format_usd


def routes(services: Services) -> list[Route]:
    limit = services.settings.max_body_bytes
    media = services.media

    async def submit(request: Request) -> Response:
        key = await services.keys.authenticate(require_key(request))
        body = await read_json(request, limit)
        job, estimate = await media.videos.submit(key, body)
        headers = {
            "x-farebox-cost": "0",  # charged when the job ends (GET shows the cost)
            "x-farebox-estimated-cost": format_usd(estimate),
        }
        return JSONResponse(job, status_code=202, headers=headers)

    async def status(request: Request) -> Response:
        key = await services.keys.authenticate(require_key(request))
        code, body, cost = await media.videos.get(
            key, request.path_params["job_id"], media.base_url(str(request.base_url))
        )
        return JSONResponse(body, status_code=code, headers={"x-farebox-cost": format_usd(cost)})

    return [
        Route("/v1/videos", submit, methods=["POST"]),
        Route("/videos", submit, methods=["POST"]),
        Route("/v1/videos/{job_id}", status, methods=["GET"]),
        Route("/videos/{job_id}", status, methods=["GET"]),
    ]
