"""Customer amounts, parsed exactly, and their USD value fixed at invoice creation."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from farebox.errors import InvalidRequest
from farebox.money import NANOS_PER_USD, read_amount
from farebox.payments.errors import AmountOutOfRange, MethodUnavailable
from farebox.payments.types import Currency, Method

SATS_PER_BTC = 100_000_000


@dataclass(frozen=True, slots=True)
class MethodSpec:
    method: Method
    label: str
    coin: str
    min_usd: Decimal
    max_usd: Decimal
    confirmations: str
    currencies: tuple[Currency, ...] = (Currency.SATS, Currency.BTC, Currency.USD)
    """What an amount may be stated in: sats and BTC only for bitcoin (Lightning, on-chain,
    Liquid); Litecoin and Monero top-ups are stated in USD (the backend prices the coin)."""


USD_ONLY = (Currency.USD,)

METHODS: dict[Method, MethodSpec] = {
    Method.LIGHTNING: MethodSpec(
        Method.LIGHTNING, "Bitcoin (Lightning)", "BTC", Decimal("0.10"), Decimal("1000"), "instant"
    ),
    Method.BTC: MethodSpec(
        Method.BTC, "Bitcoin (on-chain)", "BTC", Decimal("5"), Decimal("10000"), "1 block"
    ),
    Method.LTC: MethodSpec(
        Method.LTC, "Litecoin", "LTC", Decimal("1"), Decimal("10000"), "2 blocks", USD_ONLY
    ),
    Method.LBTC: MethodSpec(
        Method.LBTC, "Liquid Bitcoin", "LBTC", Decimal("1"), Decimal("10000"), "2 blocks"
    ),
    Method.XMR: MethodSpec(
        Method.XMR, "Monero", "XMR", Decimal("1"), Decimal("10000"), "10 blocks", USD_ONLY
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


# Decimal places each currency's amounts may have, and the unit named in errors.
PLACES = {Currency.SATS: (0, "sats"), Currency.BTC: (8, "BTC"), Currency.USD: (2, "USD")}


def check_currency(spec: MethodSpec, currency: Currency) -> None:
    """A sats or BTC amount for a coin that is not bitcoin is refused (it would be read as BTC)."""
    if currency not in spec.currencies:
        allowed = " or ".join(f'"{c.value}"' for c in spec.currencies)
        raise InvalidRequest(
            f"{spec.label} top-ups are stated in {allowed}, not {currency.value}.",
            param="currency",
        )


def parse_amount(raw: object, currency: Currency) -> Decimal:
    """An exact positive amount in `currency`, read by the one money reader (farebox/money.py):
    a JSON number (reaching here as int or Decimal, see api/topup.py) or decimal text. Booleans,
    long or non-ASCII text and absurd magnitudes are refused before any arithmetic."""
    if raw is None:
        raise InvalidRequest("amount is required.", param="amount")
    places, unit = PLACES[currency]
    units = read_amount(raw, "amount", places, unit)
    if units <= 0:
        raise InvalidRequest("amount must be greater than zero.", param="amount")
    whole, fraction = divmod(units, 10**places)
    text = f"{whole}.{fraction:0{places}d}".rstrip("0").rstrip(".") if places else str(whole)
    return Decimal(text)


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
