"""OpenAI images: `POST /v1/images/generations` (JSON) and `POST /v1/images/edits` (multipart).

Answers `b64_json` for every image (as gpt-image-1 does): a real PNG, JPEG or WebP after
`output_format`, sized after `size` (scaled down to at most 256 px).
"""

from __future__ import annotations

import base64
import time
from typing import Any

from aiohttp import web

from farebox.sim import media_gen
from farebox.sim.media_base import enter
from farebox.sim.openai_base import error_response, json_response, read_json_object

ENDPOINT = "images"


def _reply(images: list[bytes], fmt: str) -> web.Response:
    data = [{"b64_json": base64.b64encode(img).decode()} for img in images]
    return json_response(
        {"created": int(time.time()), "data": data, "output_format": fmt, "usage": {}}
    )


def _n(value: Any) -> int | None:
    try:
        n = int(value if value is not None else 1)
    except (TypeError, ValueError):
        return None
    return n if 1 <= n <= 10 else None


async def generations(request: web.Request) -> web.StreamResponse:
    body = await read_json_object(request)
    if isinstance(body, web.Response):
        return body
    entered = await enter(request, ENDPOINT, body=body)
    if isinstance(entered, web.Response):
        return entered
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        return error_response(400, "prompt is required", param="prompt")
    n = _n(body.get("n"))
    if n is None:
        return error_response(400, "n must be between 1 and 10", param="n")
    fmt = str(body.get("output_format") or "png")
    if fmt not in media_gen.IMAGE_FORMATS:
        return error_response(400, "output_format must be png, jpeg or webp", param="output_format")
    size = body.get("size")
    images = [media_gen.image(prompt, str(size) if size else None, fmt, i) for i in range(n)]
    return _reply(images, fmt)


async def edits(request: web.Request) -> web.StreamResponse:
    entered = await enter(request, ENDPOINT)
    if isinstance(entered, web.Response):
        return entered
    form = await request.post()
    prompt = form.get("prompt")
    sources = [f for key in ("image", "image[]") for f in form.getall(key, [])]
    files = [f for f in sources if isinstance(f, web.FileField)]
    if not isinstance(prompt, str) or not prompt or not files:
        return error_response(400, "image and prompt are required", param="image")
    n = _n(form.get("n"))
    if n is None:
        return error_response(400, "n must be between 1 and 10", param="n")
    fmt = str(form.get("output_format") or "png")
    try:
        source = files[0].file.read()
        images = [media_gen.edited(source, f"{prompt}/{i}", fmt) for i in range(n)]
    except (OSError, ValueError):
        return error_response(400, "The image could not be decoded.", param="image")
    return _reply(images, fmt)


ROUTES: tuple[web.RouteDef, ...] = (
    web.post("/v1/images/generations", generations),
    web.post("/v1/images/edits", edits),
)
