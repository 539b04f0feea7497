"""Customer amounts, parsed exactly, and their USD value fixed at invoice creation."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

from farebox.errors import InvalidRequest
from farebox.money import NANOS_PER_USD
from farebox.payments.errors import AmountOutOfRange, MethodUnavailable
from farebox.payments.types import Currency, Method

SATS_PER_BTC = 100_000_000
MAX_DIGITS = 24  # anything longer is a typo or an attack, not a top-up


@dataclass(frozen=True, slots=True)
class MethodSpec:
    method: Method
    label: str
    coin: str
    min_usd: Decimal
    max_usd: Decimal
    confirmations: str


METHODS: dict[Method, MethodSpec] = {
    Method.LIGHTNING: MethodSpec(
        Method.LIGHTNING, "Bitcoin (Lightning)", "BTC", Decimal("0.10"), Decimal("1000"), "instant"
    ),
    Method.BTC: MethodSpec(
        Method.BTC, "Bitcoin (on-chain)", "BTC", Decimal("5"), Decimal("10000"), "1 block"
    ),
    Method.LTC: MethodSpec(
        Method.LTC, "Litecoin", "LTC", Decimal("1"), Decimal("10000"), "2 blocks"
    ),
    Method.LBTC: MethodSpec(
        Method.LBTC, "Liquid Bitcoin", "LBTC", Decimal("1"), Decimal("10000"), "2 blocks"
    ),
    Method.XMR: MethodSpec(
        Method.XMR, "Monero", "XMR", Decimal("1"), Decimal("10000"), "10 blocks"
    ),
}


def parse_method(raw: str) -> Method:
    try:
        return Method(raw)
    except ValueError:
        known = ", ".join(m.value for m in Method)
        raise MethodUnavailable(
            f"Unknown payment method {raw[:40]!r}. Use one of: {known}.", param="method"
        ) from None


def parse_currency(raw: object) -> Currency:
    if raw is None:
        raise InvalidRequest('currency is required: "SATS", "BTC" or "USD".', param="currency")
    if not isinstance(raw, str):
        raise InvalidRequest('currency must be "SATS", "BTC" or "USD".', param="currency")
    try:
        return Currency(raw.upper())
    except ValueError:
        raise InvalidRequest(
            f'Unsupported currency {raw[:20]!r}: use "SATS", "BTC" or "USD".', param="currency"
        ) from None


def parse_amount(raw: object, currency: Currency) -> Decimal:
    """An exact positive amount. JSON numbers must reach here as Decimal (see api/topup.py),
    strings are accepted too; floats and booleans are refused."""
    if raw is None:
        raise InvalidRequest("amount is required.", param="amount")
    if isinstance(raw, bool) or not isinstance(raw, int | Decimal | str):
        raise InvalidRequest("amount must be a number.", param="amount")
    text = str(raw).strip()
    if not text or len(text) > MAX_DIGITS:
        raise InvalidRequest("amount must be a number.", param="amount")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidRequest(f"amount {text!r} is not a number.", param="amount") from None
    if not value.is_finite():
        raise InvalidRequest("amount must be a finite number.", param="amount")
    if value <= 0:
        raise InvalidRequest("amount must be greater than zero.", param="amount")
    allowed = {Currency.SATS: 0, Currency.BTC: 8, Currency.USD: 2}[currency]
    scaled = value.scaleb(allowed)
    if scaled != scaled.to_integral_value():
        what = {
            Currency.SATS: "a whole number of sats",
            Currency.BTC: "BTC with at most 8 decimal places",
            Currency.USD: "USD with at most 2 decimal places",
        }[currency]
        raise InvalidRequest(f"amount must be {what}.", param="amount")
    return value


@dataclass(frozen=True, slots=True)
class Quote:
    """An amount restated for the backend, and its USD value fixed now."""

    amount: Decimal  # in `currency` (SATS restated as BTC)
    currency: Currency  # BTC or USD
    sats: int
    usd_nanos: int
    btc_usd: Decimal  # the rate used


def quote(amount: Decimal, currency: Currency, btc_usd: Decimal) -> Quote:
    """USD value of a BTC-denominated amount rounds down to a nanodollar; sats for a USD amount
    round up to a whole sat (the customer pays at most one sat more, never gets less)."""
    if btc_usd <= 0:
        raise ValueError("the BTC/USD rate must be positive")
    if currency is Currency.USD:
        usd_nanos = int(amount * NANOS_PER_USD)
        sats = int((amount * SATS_PER_BTC / btc_usd).to_integral_value(rounding=ROUND_CEILING))
        return Quote(amount, Currency.USD, max(sats, 1), usd_nanos, btc_usd)
    sats = int(amount) if currency is Currency.SATS else int(amount * SATS_PER_BTC)
    btc = Decimal(sats) / SATS_PER_BTC
    usd_nanos = int((btc * btc_usd * NANOS_PER_USD).to_integral_value(rounding=ROUND_FLOOR))
    return Quote(btc, Currency.BTC, sats, usd_nanos, btc_usd)


def check_limits(spec: MethodSpec, usd_nanos: int) -> None:
    low = int(spec.min_usd * NANOS_PER_USD)
    high = int(spec.max_usd * NANOS_PER_USD)
    if not low <= usd_nanos <= high:
        raise AmountOutOfRange(
            f"{spec.label} top-ups must be worth between ${spec.min_usd} and ${spec.max_usd}; "
            f"this one is worth ${Decimal(usd_nanos) / NANOS_PER_USD:.2f}.",
            param="amount",
        )
