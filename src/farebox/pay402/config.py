"""Pay per request settings, from FAREBOX_PAY402_* (see the README's "Pay per request")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from farebox.settings import _bool, _float, _int


@dataclass(frozen=True)
class Pay402Config:
    enabled: bool = True
    realm: str = "farebox"
    expiry_s: int = 600  # the payment window: invoice, macaroon and challenge expire together
    retry_s: float = 86_400.0  # a paid credential stays good this long for a retry
    challenges_per_minute: int = 30  # per client address; 0 turns the limit off

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Pay402Config:
        public = env.get("FAREBOX_PUBLIC_URL") or ""
        realm = env.get("FAREBOX_PAY402_REALM") or urlsplit(public).hostname or cls.realm
        expiry = _int(env, "FAREBOX_PAY402_EXPIRY_S", cls.expiry_s)
        if not 10 <= expiry <= 86_400:
            raise ValueError("FAREBOX_PAY402_EXPIRY_S must be between 10 and 86400 seconds")
        return cls(
            enabled=_bool(env, "FAREBOX_PAY402", cls.enabled),
            realm=realm,
            expiry_s=expiry,
            retry_s=_float(env, "FAREBOX_PAY402_RETRY_S", cls.retry_s),
            challenges_per_minute=_int(
                env, "FAREBOX_PAY402_CHALLENGES_PER_MIN", cls.challenges_per_minute
            ),
        )
