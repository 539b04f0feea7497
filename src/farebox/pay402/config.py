"""Pay per request settings, from FAREBOX_PAY402_* (see the README's "Pay per request")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from farebox.money import MoneyError, usd_to_nanos
from farebox.settings import _bool, _float, _int, _setting


@dataclass(frozen=True)
class Pay402Config:
    enabled: bool = True
    realm: str = "farebox"
    expiry_s: int = 600  # the payment window: invoice, macaroon and challenge expire together
    retry_s: float = 86_400.0  # a paid credential stays good this long for a retry
    challenges_per_minute: int = 30  # per client address; 0 turns the limit off
    # Chat paid per request: a request is priced at its worst case, at most this much (the
    # output cap is lowered to fit), and what it does not use stays on an L402 token this long.
    chat_max_nanos: int = 500_000_000
    chat_balance_s: float = 30 * 86_400.0

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
            chat_max_nanos=_setting(
                env, "FAREBOX_PAY402_CHAT_MAX_USD", cls.chat_max_nanos, _positive_usd, "USD > 0"
            ),
            chat_balance_s=86_400.0
            * _float(env, "FAREBOX_PAY402_CHAT_BALANCE_DAYS", cls.chat_balance_s / 86_400),
        )

    def keep_s(self, worst_case: bool) -> float:
        """How long a paid credential serves after its first use: a chat token's balance
        lives `chat_balance_s`; any other keeps what a failure left for a retry `retry_s`."""
        return self.chat_balance_s if worst_case else self.retry_s


def _positive_usd(raw: str) -> int:
    try:
        nanos = usd_to_nanos(raw)
    except MoneyError:
        raise ValueError(raw) from None
    if nanos <= 0:
        raise ValueError(raw)
    return nanos
