"""Per-request fault and timing options: parsed from a URL prefix or a body `sim` object.

A URL prefix `/sim/status=503,latency_ms=20/v1/...` sets options for every request sent to that
base URL; a body field `"sim": {"status": 503}` sets them for one request. Both use the same keys
and merge, the body winning.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

HANG_FOREVER_MS = 3_600_000.0
"""What `timeout` hangs for: an hour, longer than any client waits."""


class FaultSpecError(ValueError):
    """A fault option that cannot be understood; answered with a 400."""


@dataclass(frozen=True, slots=True)
class Faults:
    """Options for one request; None means "not set here" (the config or a default applies)."""

    status: int | None = None
    hang_ms: float | None = None
    disconnect_after: int | None = None
    error_after: int | None = None
    output_tokens: int | None = None
    tool_call: bool | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    tps: float | None = None
    usage: bool | None = None
    fail_first: int | None = None
    job_ms: float | None = None
    job_fail: bool | None = None
    report_ms: float | None = None
    reasoning_tokens: int | None = None
    ignore_cap: bool | None = None
    web_searches: int | None = None

    def merged(self, over: Faults) -> Faults:
        """These options with every option set in `over` replacing ours."""
        if over is NO_FAULTS:
            return self
        if self is NO_FAULTS:
            return over
        changes = {
            f.name: value
            for f in dataclasses.fields(over)
            if (value := getattr(over, f.name)) is not None
        }
        return dataclasses.replace(self, **changes)


NO_FAULTS = Faults()

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _to_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in _TRUE:
        return True
    if isinstance(raw, str) and raw.lower() in _FALSE:
        return False
    raise ValueError("expected true or false")


def _to_count(raw: object) -> int:
    if isinstance(raw, bool):
        raise ValueError("expected a whole number")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and raw.strip().isdigit():
        value = int(raw)
    else:
        raise ValueError("expected a whole number")
    if value < 0:
        raise ValueError("expected a number >= 0")
    return value


def _to_ms(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError("expected a number")
    value = float(raw)
    if not value >= 0:  # also rejects NaN
        raise ValueError("expected a number >= 0")
    return value


def _to_status(raw: object) -> int:
    value = _to_count(raw)
    if not 100 <= value <= 599:
        raise ValueError("expected an HTTP status between 100 and 599")
    return value


def _to_timeout(raw: object) -> float | None:
    if raw is True or (isinstance(raw, str) and raw.lower() in _TRUE):
        return HANG_FOREVER_MS
    if raw is False or (isinstance(raw, str) and raw.lower() in _FALSE):
        return None
    return _to_ms(raw)


_KEYS: Mapping[str, tuple[str, Callable[[object], object]]] = {
    "status": ("status", _to_status),
    "timeout": ("hang_ms", _to_timeout),
    "hang_ms": ("hang_ms", _to_ms),
    "disconnect_after": ("disconnect_after", _to_count),
    "error_after": ("error_after", _to_count),
    "output_tokens": ("output_tokens", _to_count),
    "tool_call": ("tool_call", _to_bool),
    "latency_ms": ("latency_ms", _to_ms),
    "ttft_ms": ("ttft_ms", _to_ms),
    "tps": ("tps", _to_ms),
    "usage": ("usage", _to_bool),
    "fail_first": ("fail_first", _to_count),
    "job_ms": ("job_ms", _to_ms),
    "job_fail": ("job_fail", _to_bool),
    "report_ms": ("report_ms", _to_ms),
    "reasoning_tokens": ("reasoning_tokens", _to_count),
    "ignore_cap": ("ignore_cap", _to_bool),
    "web_searches": ("web_searches", _to_count),
}

FAULT_KEYS: tuple[str, ...] = tuple(_KEYS)


def _build(items: Mapping[str, object], where: str) -> Faults:
    values: dict[str, object] = {}
    for key, raw in items.items():
        entry = _KEYS.get(key)
        if entry is None:
            raise FaultSpecError(
                f"Unknown sim option {key!r} in {where}; known options: {', '.join(FAULT_KEYS)}."
            )
        field, convert = entry
        try:
            values[field] = convert(raw)
        except (ValueError, OverflowError) as exc:
            message = f"Bad value {raw!r} for sim option {key!r} in {where}: {exc}."
            raise FaultSpecError(message) from exc
    return Faults(**values) if values else NO_FAULTS  # type: ignore[arg-type]


@lru_cache(maxsize=1024)
def parse_prefix(spec: str) -> Faults:
    """Options from a URL path segment such as `status=503,hang_ms=50` (a bare key = true)."""
    items: dict[str, object] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        items[key.strip()] = value.strip() if sep else True
    return _build(items, f"URL prefix /sim/{spec}")


def parse_body(sim: object) -> Faults:
    """Options from a request body's `sim` object (None when the body has none)."""
    if sim is None:
        return NO_FAULTS
    if not isinstance(sim, dict):
        raise FaultSpecError("The request field 'sim' must be an object.")
    return _build(sim, "the request field 'sim'")
