"""GET /v1/media/{gen_id}/{n}?sig=…&exp=…: a stored generation file, behind its signature."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.services import Services
from farebox.errors import NotFound, quoted
from farebox.inputs import ascii_whole_number

MAX_INDEX_DIGITS = 4  # a generation has a handful of items


def routes(services: Services) -> list[Route]:
    store = services.media.media

    async def media(request: Request) -> Response:
        gen_id = request.path_params["gen_id"]
        raw_n = request.path_params["n"]
        n = ascii_whole_number(raw_n, MAX_INDEX_DIGITS)
        if n is None:
            raise NotFound(f"There is no media item {quoted(gen_id)}/{quoted(raw_n)}.")
        item = await store.open(
            gen_id,
            n,
            request.query_params.get("sig", ""),
            request.query_params.get("exp", ""),
        )
        return Response(
            item.data,
            media_type=item.content_type,
            headers={"Cache-Control": "private, max-age=3600"},
        )

    return [Route("/v1/media/{gen_id}/{n}", media, methods=["GET", "HEAD"])]
