"""Media settings from the environment: where files go, the public URL, fetch limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from farebox.db.database import normalize_url
from farebox.net.ssrf import FetchPolicy


@dataclass(frozen=True)
class MediaConfig:
    media_dir: Path
    public_url: str | None
    fetch: FetchPolicy

    @classmethod
    def from_env(cls, env: Mapping[str, str], database_url: str) -> MediaConfig:
        """FAREBOX_MEDIA_DIR (default: beside a SQLite file, else ./farebox-media),
        FAREBOX_PUBLIC_URL (base of signed media URLs; default: the request's own)."""
        folder = env.get("FAREBOX_MEDIA_DIR")
        return cls(
            media_dir=Path(folder) if folder else default_media_dir(database_url),
            public_url=(env.get("FAREBOX_PUBLIC_URL") or "").rstrip("/") or None,
            fetch=FetchPolicy.from_env(env),
        )


def default_media_dir(database_url: str) -> Path:
    url = make_url(normalize_url(database_url))
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        db = Path(url.database)
        return db.with_name(db.name + ".media")
    return Path.cwd() / "farebox-media"
