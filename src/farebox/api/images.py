"""POST /v1/images/generations (JSON, PPQ's parameters) and POST /v1/images/edits (multipart)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.paid import paid_response
from farebox.api.requests import read_json, require_key
from farebox.api.services import Services
from farebox.api.uploads import read_multipart

MAX_IMAGE_BYTES = 25 * 1024 * 1024


def routes(services: Services) -> list[Route]:
    limit = services.settings.max_body_bytes
    media = services.media

    async def generations(request: Request) -> Response:
        key = await services.keys.authenticate(require_key(request))
        body = await read_json(request, limit)
        base = media.base_url(str(request.base_url))
        return paid_response(await media.images.generate(key, body, base))

    async def edits(request: Request) -> Response:
        key = await services.keys.authenticate(require_key(request))
        upload = await read_multipart(request, MAX_IMAGE_BYTES)
        try:
            fields = {
                name: upload.text(name) for name in upload.form if upload.text(name) is not None
            }
            images = upload.files("image", "image[]")
            masks = upload.files("mask")
            image = await images[0].read() if images else None
            mask = await masks[0].read() if masks else None
        finally:
            await upload.close()
        base = media.base_url(str(request.base_url))
        return paid_response(await media.images.edit(key, fields, image, mask, base))

    return [
        Route("/v1/images/generations", generations, methods=["POST"]),
        Route("/images/generations", generations, methods=["POST"]),
        Route("/v1/images/edits", edits, methods=["POST"]),
        Route("/images/edits", edits, methods=["POST"]),
    ]
