"""Configuration from the environment (FAREBOX_*) and CLI flags. One frozen object, passed in."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def _setting(
    env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T], what: str
) -> T:
    """The variable `name` parsed, or `default` when unset or empty; a bad value raises a
    ValueError that names the variable and says what it must be."""
    raw = env.get(name, "").strip()
    if raw == "":
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ValueError(f"{name} must be {what}, not {raw!r}") from None


_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True}
_BOOLEANS.update({"0": False, "false": False, "no": False, "off": False})


def _parse_bool(raw: str) -> bool:
    try:
        return _BOOLEANS[raw.lower()]
    except KeyError:
        raise ValueError(raw) from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return _setting(env, name, default, float, "a number")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return _setting(env, name, default, int, "a whole number")


def _parse_positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(raw)
    return value


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    return _setting(env, name, default, _parse_positive, "a whole number of at least 1")


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    return _setting(env, name, default, _parse_bool, "1/true/yes/on or 0/false/no/off")


def parse_networks(raw: str) -> tuple[str, ...]:
    """ "10.0.0.0/8, 192.168.1.5" -> normalised CIDRs; a ValueError for anything else."""
    return tuple(
        str(ipaddress.ip_network(part.strip(), strict=False))
        for part in raw.split(",")
        if part.strip()
    )


def _secret_key(env: Mapping[str, str]) -> str | None:
    """FAREBOX_SECRET_KEY, or the contents of FAREBOX_SECRET_KEY_FILE (not both)."""
    value = env.get("FAREBOX_SECRET_KEY", "").strip()
    path = env.get("FAREBOX_SECRET_KEY_FILE", "").strip()
    if value and path:
        raise ValueError("set FAREBOX_SECRET_KEY or FAREBOX_SECRET_KEY_FILE, not both")
    if not path:
        return value or None
    try:
        value = Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ValueError(f"FAREBOX_SECRET_KEY_FILE {path!r} cannot be read: {reason}") from None
    if not value:
        raise ValueError(f"FAREBOX_SECRET_KEY_FILE {path!r} is empty")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///farebox.db"
    catalog_path: Path | None = None
    admin_token: str | None = None
    # The instance secret (FAREBOX_SECRET_KEY, or read from FAREBOX_SECRET_KEY_FILE): encrypts
    # API keys and NWC connections at rest and signs media URLs. Never stored in the database;
    # when unset, a single SQLite process keeps one in a file next to the database
    # (keys/instance_secret.py).
    secret_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    redis_url: str | None = None
    # Names in Redis start with this (several gateways, or tests, may share one Redis).
    redis_prefix: str = "farebox:"
    max_body_bytes: int = 4 * 1024 * 1024
    hold_timeout_s: float = 300.0
    sweep_interval_s: float = 5.0
    stream_increment_tokens: int = 256
    # Output tokens a chat request without max_tokens is held for and capped at (each choice;
    # never above the model's max_output or what the customer can pay for): see chat/caps.py.
    default_max_tokens: int = 4096
    key_cache_ttl_s: float = 1.0
    # SIGTERM (net/drain.py): /readyz answers 503 for `drain_notice_s` while still serving, then
    # new connections are refused and requests in flight get up to `drain_s` to finish.
    drain_s: float = 30.0
    drain_notice_s: float = 0.0
    log_content: bool = False
    db_threads: int = 4
    # PostgreSQL: holds, settlements and renewals commit without waiting for the disk (see
    # Database.async_commit and the README's "What a crash costs").
    ledger_async_commit: bool = True
    # Slow clients and floods (net/connections.py, net/ratelimit.py; README "Behind a reverse proxy").
    header_timeout_s: float = 10.0
    body_timeout_s: float = 20.0
    body_min_rate: int = 500
    max_connections: int = 1000
    max_header_bytes: int = 64 * 1024
    trusted_proxies: tuple[str, ...] = ()
    signup_per_minute: float = 3.0
    signup_burst: int = 10
    # The web dashboard (dashboard/): sessions end after this long idle, or this long after
    # sign-in whatever happens; sign-in attempts per client address (README "The dashboard").
    session_idle_s: float = 3600.0
    session_max_s: float = 86400.0
    signin_per_minute: float = 10.0
    signin_burst: int = 10
    # The public base URL (FAREBOX_PUBLIC_URL): a plain http:// one drops the cookies' Secure.
    public_url: str | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        catalog = env.get("FAREBOX_CATALOG")
        return cls(
            database_url=env.get("FAREBOX_DATABASE_URL") or cls.database_url,
            catalog_path=Path(catalog) if catalog else None,
            admin_token=env.get("FAREBOX_ADMIN_TOKEN") or None,
            secret_key=_secret_key(env),
            redis_url=env.get("FAREBOX_REDIS_URL") or None,
            redis_prefix=env.get("FAREBOX_REDIS_PREFIX") or cls.redis_prefix,
            max_body_bytes=_int(env, "FAREBOX_MAX_BODY_BYTES", cls.max_body_bytes),
            hold_timeout_s=_float(env, "FAREBOX_HOLD_TIMEOUT_S", cls.hold_timeout_s),
            sweep_interval_s=_float(env, "FAREBOX_SWEEP_INTERVAL_S", cls.sweep_interval_s),
            stream_increment_tokens=_int(
                env, "FAREBOX_STREAM_INCREMENT_TOKENS", cls.stream_increment_tokens
            ),
            default_max_tokens=_positive_int(
                env, "FAREBOX_DEFAULT_MAX_TOKENS", cls.default_max_tokens
            ),
            key_cache_ttl_s=_float(env, "FAREBOX_KEY_CACHE_TTL_S", cls.key_cache_ttl_s),
            drain_s=_float(env, "FAREBOX_DRAIN_S", cls.drain_s),
            drain_notice_s=_float(env, "FAREBOX_DRAIN_NOTICE_S", cls.drain_notice_s),
            log_content=_bool(env, "FAREBOX_LOG_CONTENT", cls.log_content),
            db_threads=_int(env, "FAREBOX_DB_THREADS", cls.db_threads),
            ledger_async_commit=_bool(env, "FAREBOX_LEDGER_ASYNC_COMMIT", cls.ledger_async_commit),
            header_timeout_s=_float(env, "FAREBOX_HEADER_TIMEOUT_S", cls.header_timeout_s),
            body_timeout_s=_float(env, "FAREBOX_BODY_TIMEOUT_S", cls.body_timeout_s),
            body_min_rate=_int(env, "FAREBOX_BODY_MIN_RATE", cls.body_min_rate),
            max_connections=_int(env, "FAREBOX_MAX_CONNECTIONS", cls.max_connections),
            max_header_bytes=_int(env, "FAREBOX_MAX_HEADER_BYTES", cls.max_header_bytes),
            trusted_proxies=_setting(
                env,
                "FAREBOX_TRUSTED_PROXIES",
                cls.trusted_proxies,
                parse_networks,
                "comma-separated IP addresses or CIDR networks",
            ),
            signup_per_minute=_float(env, "FAREBOX_SIGNUP_PER_MINUTE", cls.signup_per_minute),
            signup_burst=_int(env, "FAREBOX_SIGNUP_BURST", cls.signup_burst),
            session_idle_s=_float(env, "FAREBOX_SESSION_IDLE_S", cls.session_idle_s),
            session_max_s=_float(env, "FAREBOX_SESSION_MAX_S", cls.session_max_s),
            signin_per_minute=_float(env, "FAREBOX_SIGNIN_PER_MINUTE", cls.signin_per_minute),
            signin_burst=_int(env, "FAREBOX_SIGNIN_BURST", cls.signin_burst),
            public_url=(env.get("FAREBOX_PUBLIC_URL") or "").strip().rstrip("/") or None,
            extra_env=dict(env),
        )

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]
