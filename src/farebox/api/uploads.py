"""Multipart uploads (audio files, images to edit) with the size limit enforced while the body
streams in: the parser sees a stream that stops at the limit, so an oversized upload is refused
before it is all received or spooled."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from farebox.errors import FareboxError, InvalidRequest, PayloadTooLarge
from farebox.inputs import content_length

FIELDS_ALLOWANCE = 256 * 1024
"""Room for the text fields and multipart framing on top of the file limit."""


class UnsupportedContentType(FareboxError):
    status = 415
    code = "unsupported_content_type"


def _too_large(limit: int) -> PayloadTooLarge:
    mb = limit / (1024 * 1024)
    return PayloadTooLarge(f"The uploaded file is larger than the {mb:g} MB limit.", param="file")


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit - FIELDS_ALLOWANCE)
        yield chunk


@dataclass
class Upload:
    """A parsed multipart form; `close()` drops the spooled files."""

    form: FormData

    def text(self, name: str) -> str | None:
        value = self.form.get(name)
        return value if isinstance(value, str) and value != "" else None

    def files(self, *names: str) -> list[UploadFile]:
        found: list[UploadFile] = []
        for name in names:
            found.extend(v for v in self.form.getlist(name) if isinstance(v, UploadFile))
        return found

    async def close(self) -> None:
        await self.form.close()


async def read_multipart(request: Request, max_file_bytes: int, max_files: int = 8) -> Upload:
    """The request's multipart/form-data body, each file at most `max_file_bytes`."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedContentType(
            "This endpoint takes multipart/form-data (a file upload), "
            f"not {content_type.split(';')[0] or 'an empty content type'}."
        )
    limit = max_file_bytes + FIELDS_ALLOWANCE
    declared = content_length(request.headers.get("content-length"))
    if declared is not None and declared > limit:
        raise _too_large(max_file_bytes)
    parser = MultiPartParser(
        request.headers, _limited(request, limit), max_files=max_files, max_fields=64
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequest(f"The multipart body could not be read: {exc.message}") from exc
    upload = Upload(form)
    for file in upload.files(*form.keys()):
        if file.size is not None and file.size > max_file_bytes:
            await upload.close()
            raise _too_large(max_file_bytes)
    return upload
