"""POST /v1/images/generations (JSON, PPQ's parameters) and POST /v1/images/edits (multipart).
With no API key both are paid per request over HTTP 402 (api/pay402.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.api.paid import paid_response
from farebox.api.pay402 import key_or_keyless, purchase_for
from farebox.api.requests import read_json
from farebox.api.services import Services
from farebox.api.uploads import read_multipart
from farebox.api.wire.media import ImageEditForm, ImageGenerationRequest
from farebox.api.wire.validate import validate
from farebox.images.service import ImageOrder
from farebox.pay402.types import Offer

MAX_IMAGE_BYTES = 25 * 1024 * 1024
GENERATIONS = "/v1/images/generations"
EDITS = "/v1/images/edits"


def _offer(endpoint: str, order: ImageOrder) -> Offer:
    n = order.call.job.n
    what = f"{n} image{'s' if n > 1 else ''} from {order.call.model.id}"
    return Offer(endpoint, order.price, f"POST {endpoint} ({what})")


def routes(services: Services) -> list[Route]:
    limit = services.settings.max_body_bytes
    media = services.media

    async def generations(request: Request) -> Response:
        key = await key_or_keyless(services, request)
        body = validate(ImageGenerationRequest, await read_json(request, limit))
        order = media.images.read_generation(body.model_dump(exclude_unset=True))
        base = media.base_url(str(request.base_url))
        offer = _offer(GENERATIONS, order)
        async with await purchase_for(services, request, key, offer) as paid:
            result = await media.images.run(paid.buyer, order, base)
            result.headers.update(await paid.settled())
        return paid_response(result)

    async def edits(request: Request) -> Response:
        key = await key_or_keyless(services, request)
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
        form = validate(ImageEditForm, fields).model_dump(exclude_unset=True)
        order = await media.images.read_edit(form, image, mask)
        base = media.base_url(str(request.base_url))
        async with await purchase_for(services, request, key, _offer(EDITS, order)) as paid:
            result = await media.images.run(paid.buyer, order, base)
            result.headers.update(await paid.settled())
        return paid_response(result)

    return [
        Route(GENERATIONS, generations, methods=["POST"]),
        Route("/images/generations", generations, methods=["POST"]),
        Route(EDITS, edits, methods=["POST"]),
        Route("/images/edits", edits, methods=["POST"]),
    ]
