"""Input images (for edits and image-to-X models): fetched with the SSRF guard, then decoded
to prove they are images before any money is held."""

from __future__ import annotations

import asyncio
import io

from farebox import optional
from farebox.errors import InvalidRequest
from farebox.images.request import InputImage
from farebox.net.ssrf import FetchPolicy, fetch

FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


def _decode(data: bytes, param: str) -> InputImage:
    Image = optional.pil_image()  # the module, by its usual name
    try:
        with Image.open(io.BytesIO(data)) as picture:
            picture.load()
            kind = picture.format or ""
    except (Image.UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidRequest(
            f"The {param} is not an image we can read (PNG, JPEG, WebP or GIF).", param=param
        ) from exc
    if kind not in FORMATS:
        raise InvalidRequest(
            f"The {param} must be PNG, JPEG, WebP or GIF, not {kind}.", param=param
        )
    return InputImage(data, FORMATS[kind])


async def checked_image(data: bytes, param: str) -> InputImage:
    return await asyncio.to_thread(_decode, data, param)


async def fetch_image(url: str, policy: FetchPolicy) -> InputImage:
    fetched = await fetch(url, policy)
    return await checked_image(fetched.data, "image_url")
