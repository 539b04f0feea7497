"""POST /v1/videos (submit a job) and GET /v1/videos/{id} (202 while running, 200 when done).
With no API key a submission is paid per request over HTTP 402 (api/pay402.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.pay402 import key_or_keyless, purchase_for
from farebox.api.requests import bearer_key, read_json, require_key
from farebox.api.responses import JSONResponse
from farebox.api.services import Services
from farebox.api.wire.media import VideoRequest
from farebox.api.wire.validate import validate
from farebox.money import format_usd
from farebox.pay402.types import Offer

SUBMIT = "/v1/videos"


def routes(services: Services) -> list[Route]:
    limit = services.settings.max_body_bytes
    media = services.media

    async def submit(request: Request) -> Response:
        key = await key_or_keyless(services, request)
        body = validate(VideoRequest, await read_json(request, limit))
        call = media.videos.read_submission(body.model_dump(exclude_unset=True))
        what = f"POST {SUBMIT} ({call.job.seconds} s of {call.model.id})"
        async with await purchase_for(
            services, request, key, Offer(SUBMIT, call.quote, what)
        ) as paid:
            job, estimate = await media.videos.submit(
                paid.buyer, call, media.base_url(str(request.base_url))
            )
        # The job is charged when it ends: a Cashu payer fetches its change then, by the
        # X-Cashu-Change-Id given here (GET /v1/cashu/change/{id}).
        headers = {
            "x-farebox-cost": "0",  # charged when the job ends (GET shows the cost)
            "x-farebox-estimated-cost": format_usd(estimate),
            **paid.headers,
        }
        return JSONResponse(job, status_code=202, headers=headers)

    async def status(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        base = media.base_url(str(request.base_url))
        query = request.query_params
        if bearer_key(request) is None and ("sig" in query or "exp" in query):
            # the signed status_url from submit: no API key needed
            found = await media.videos.get_signed(
                job_id, query.get("sig", ""), query.get("exp", ""), base
            )
        else:
            key = await services.keys.authenticate(require_key(request))
            found = await media.videos.get(key, job_id, base)
        code, body, cost = found
        return JSONResponse(body, status_code=code, headers={"x-farebox-cost": format_usd(cost)})

    return [
        Route(SUBMIT, submit, methods=["POST"]),
        Route("/videos", submit, methods=["POST"]),
        Route("/v1/videos/{job_id}", status, methods=["GET"]),
        Route("/videos/{job_id}", status, methods=["GET"]),
    ]
