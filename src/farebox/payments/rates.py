"""Where the BTC/USD rate comes from: a port, so production uses the backend's own rates and
tests a fixed table."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Protocol

from farebox.payments.errors import PaymentBackendError


class RateSource(Protocol):
    async def btc_usd(self) -> Decimal:
        """USD per BTC now."""
        ...


class FixedRates:
    """A fixed table (tests, the demo). `{"BTC": Decimal("100000")}`."""

    def __init__(self, table: Mapping[str, Decimal]) -> None:
        self._btc = table["BTC"]

    async def btc_usd(self) -> Decimal:
        return self._btc

    @classmethod
    def parse(cls, spec: str) -> FixedRates:
        """`BTC=100000` (comma-separated pairs)."""
        table: dict[str, Decimal] = {}
        for part in spec.split(","):
            coin, _, value = part.partition("=")
            try:
                table[coin.strip().upper()] = Decimal(value.strip())
            except InvalidOperation as exc:
                raise ValueError(f"bad rate {part!r} in FAREBOX_TOPUP_RATES") from exc
        if table.get("BTC", Decimal(0)) <= 0:
            raise ValueError("FAREBOX_TOPUP_RATES needs a positive BTC=<usd> rate")
        return cls(table)


class CachedRates:
    """Wraps a fetch function (the backend's rate API) with a short cache."""

    def __init__(self, fetch: Callable[[], Awaitable[Decimal]], ttl_s: float = 60.0) -> None:
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._value: tuple[float, Decimal] | None = None

    async def btc_usd(self) -> Decimal:
        now = time.monotonic()
        if self._value is not None and now - self._value[0] < self._ttl_s:
            return self._value[1]
        rate = await self._fetch()
        if not rate.is_finite() or rate <= 0:
            raise PaymentBackendError("The payment backend returned an unusable BTC/USD rate.")
        self._value = (now, rate)
        return rate
