"""Which payment backends run, from FAREBOX_* variables (see the README's "Top-ups" section)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from farebox.db.database import Database
from farebox.payments.btcpay import BTCPay, parse_payment_methods
from farebox.payments.lnbits import LNbits
from farebox.payments.rates import CachedRates, FixedRates, RateSource
from farebox.payments.service import TopupService
from farebox.payments.types import PaymentBackend

DEMO_RATES = "BTC=100000"


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class PaymentsConfig:
    dev_wallet: bool = False
    btcpay_url: str | None = None
    btcpay_api_key: str | None = None
    btcpay_store_id: str | None = None
    btcpay_webhook_secret: str | None = None
    btcpay_methods: str | None = None
    lnbits_url: str | None = None
    lnbits_invoice_key: str | None = None
    public_url: str | None = None
    fixed_rates: str | None = None
    lightning_backend: str | None = None
    expiry_s: int = 900
    poll_interval_s: float = 15.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PaymentsConfig:
        def get(name: str) -> str | None:
            return env.get(name) or None

        return cls(
            dev_wallet=_flag(env, "FAREBOX_DEV_WALLET"),
            btcpay_url=get("FAREBOX_BTCPAY_URL"),
            btcpay_api_key=get("FAREBOX_BTCPAY_API_KEY"),
            btcpay_store_id=get("FAREBOX_BTCPAY_STORE_ID"),
            btcpay_webhook_secret=get("FAREBOX_BTCPAY_WEBHOOK_SECRET"),
            btcpay_methods=get("FAREBOX_BTCPAY_METHODS"),
            lnbits_url=get("FAREBOX_LNBITS_URL"),
            lnbits_invoice_key=get("FAREBOX_LNBITS_INVOICE_KEY"),
            public_url=get("FAREBOX_PUBLIC_URL"),
            fixed_rates=get("FAREBOX_TOPUP_RATES"),
            lightning_backend=get("FAREBOX_LIGHTNING_BACKEND"),
            expiry_s=int(env.get("FAREBOX_TOPUP_EXPIRY_S") or cls.expiry_s),
            poll_interval_s=float(env.get("FAREBOX_TOPUP_POLL_S") or cls.poll_interval_s),
        )


def build_topups(config: PaymentsConfig, db: Database, secret: str) -> TopupService:
    backends: list[PaymentBackend] = []
    btcpay: BTCPay | None = None
    lnbits: LNbits | None = None
    if config.btcpay_url:
        if not (config.btcpay_api_key and config.btcpay_store_id):
            raise ValueError(
                "FAREBOX_BTCPAY_URL needs FAREBOX_BTCPAY_API_KEY and FAREBOX_BTCPAY_STORE_ID"
            )
        methods = parse_payment_methods(config.btcpay_methods) if config.btcpay_methods else None
        btcpay = BTCPay(
            config.btcpay_url,
            config.btcpay_api_key,
            config.btcpay_store_id,
            config.btcpay_webhook_secret,
            methods,
        )
        backends.append(btcpay)
    if config.lnbits_url:
        if not config.lnbits_invoice_key:
            raise ValueError("FAREBOX_LNBITS_URL needs FAREBOX_LNBITS_INVOICE_KEY")
        lnbits = LNbits(config.lnbits_url, config.lnbits_invoice_key, config.public_url)
        backends.append(lnbits)
    if config.dev_wallet:
        # BOLT11 and secp256k1 (about 6 MB) are loaded only for the dev wallet
        from farebox.payments.devwallet import DevWallet

        backends.append(DevWallet(db, secret))
    rates: RateSource
    if config.fixed_rates:
        rates = FixedRates.parse(config.fixed_rates)
    elif btcpay is not None:
        rates = CachedRates(btcpay.btc_usd)
    elif lnbits is not None:
        rates = CachedRates(lnbits.btc_usd)
    else:
        rates = FixedRates.parse(DEMO_RATES)  # the dev wallet alone moves no real money
    lightning = config.lightning_backend or ("lnbits" if lnbits else None)
    return TopupService(
        db,
        backends,
        rates,
        expiry_s=config.expiry_s,
        lightning_backend=lightning,
        poll_interval_s=config.poll_interval_s,
    )
