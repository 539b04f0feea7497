"""Cashu settings, from FAREBOX_CASHU_* (see the README's "Pay per request")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from farebox.cashu.tokens import MAX_URL_CHARS, normalize_mint_url
from farebox.settings import _float

UNIT = "sat"


def parse_mints(raw: str) -> tuple[str, ...]:
    """Comma-separated http(s) mint URLs, normalised as tokens name them (no trailing slash)."""
    mints: list[str] = []
    for part in raw.split(","):
        url = normalize_mint_url(part)
        if not url:
            continue
        parsed = urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"FAREBOX_CASHU_MINTS: {url!r} is not an http(s) URL")
        if parsed.query or parsed.fragment or len(url) > MAX_URL_CHARS:
            raise ValueError(f"FAREBOX_CASHU_MINTS: {url!r} is not a plain mint URL")
        if url not in mints:
            mints.append(url)
    return tuple(mints)


@dataclass(frozen=True)
class CashuConfig:
    mints: tuple[str, ...] = ()  # trusted mints; none: no Cashu
    change_keep_s: float = 86_400.0  # how long a change id answers
    mint_timeout_s: float = 20.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CashuConfig:
        keep = _float(env, "FAREBOX_CASHU_CHANGE_KEEP_S", cls.change_keep_s)
        if keep < 60:
            raise ValueError("FAREBOX_CASHU_CHANGE_KEEP_S must be at least 60 seconds")
        return cls(
            mints=parse_mints(env.get("FAREBOX_CASHU_MINTS", "")),
            change_keep_s=keep,
            mint_timeout_s=_float(env, "FAREBOX_CASHU_MINT_TIMEOUT_S", cls.mint_timeout_s),
        )
