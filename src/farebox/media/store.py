"""Saving a generation's files and opening them again through a signed URL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select

from farebox.db.database import Database
from farebox.errors import NotFound
from farebox.media.signing import MediaSigner
from farebox.media.storage import MediaStorage
from farebox.media.tables import media_objects

EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "audio/mpeg": "mp3",
    "audio/wav": "wav",
}


@dataclass(frozen=True, slots=True)
class MediaFile:
    data: bytes
    content_type: str


def new_gen_id() -> str:
    return "gen_" + uuid.uuid4().hex


class MediaStore:
    def __init__(self, db: Database, storage: MediaStorage, signer: MediaSigner) -> None:
        self.db = db
        self.storage = storage
        self.signer = signer

    async def save(self, gen_id: str, account_id: str, files: Sequence[MediaFile]) -> None:
        """Store the files (bytes first, then their rows) as items 0..len-1 of `gen_id`."""
        now = time.time()
        rows = []
        for n, item in enumerate(files):
            key = f"{gen_id[-2:]}/{gen_id}/{n}.{EXTENSIONS.get(item.content_type, 'bin')}"
            await self.storage.put(key, item.data, item.content_type)
            rows.append(
                {
                    "gen_id": gen_id,
                    "n": n,
                    "account_id": account_id,
                    "content_type": item.content_type,
                    "storage_key": key,
                    "size": len(item.data),
                    "created_at": now,
                }
            )

        def write(conn: Any) -> None:
            # Saving the same generation again (a retried job) replaces its rows.
            conn.execute(delete(media_objects).where(media_objects.c.gen_id == gen_id))
            conn.execute(insert(media_objects), rows)

        if rows:
            await self.db.write(write)

    def url(self, base_url: str, gen_id: str, n: int) -> str:
        return base_url.rstrip("/") + self.signer.path(gen_id, n)

    async def open(self, gen_id: str, n: int, sig: str, exp: str) -> MediaFile:
        """The file behind a signed URL: Forbidden for a bad or expired signature, else
        NotFound when there is no such item."""
        self.signer.verify(gen_id, n, sig, exp)

        def read(conn: Any) -> Any:
            return conn.execute(
                select(media_objects.c.storage_key, media_objects.c.content_type).where(
                    media_objects.c.gen_id == gen_id, media_objects.c.n == n
                )
            ).first()

        row = await self.db.read(read)
        data = await self.storage.get(row[0]) if row is not None else None
        if row is None or data is None:
            raise NotFound(f"There is no media item {gen_id}/{n}.")
        return MediaFile(data, row[1])
