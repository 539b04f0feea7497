"""The observability settings: FAREBOX_ACCESS_LOG, FAREBOX_LOG_FORMAT, FAREBOX_METRICS and
FAREBOX_METRICS_PUBLIC (docs/operators/metrics-and-logs.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from farebox.settings import _parse_bool, _setting

_BOOL = "1/true/yes/on or 0/false/no/off"


def _format(raw: str) -> str:
    if raw.lower() not in ("text", "json"):
        raise ValueError(raw)
    return raw.lower()


@dataclass(frozen=True)
class ObserveConfig:
    access_log: bool = True  # one line per request on standard output
    log_format: str = "text"  # "text" (key=value) or "json" (one object per line)
    metrics: bool = True  # count, and answer GET /metrics
    metrics_public: bool = False  # GET /metrics without the admin token

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ObserveConfig:
        return cls(
            access_log=_setting(env, "FAREBOX_ACCESS_LOG", True, _parse_bool, _BOOL),
            log_format=_setting(env, "FAREBOX_LOG_FORMAT", "text", _format, "text or json"),
            metrics=_setting(env, "FAREBOX_METRICS", True, _parse_bool, _BOOL),
            metrics_public=_setting(env, "FAREBOX_METRICS_PUBLIC", False, _parse_bool, _BOOL),
        )
