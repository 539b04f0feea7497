"""Talking to the customer's wallet: a port, and its nostr-sdk implementation.

nostr-sdk opens its own sockets, so every relay connection goes through a SOCKS5 endpoint of
ours (net/socks.py) that resolves the relay's host, vets it with the SSRF guard and connects to
the vetted address: a relay URL can never reach the operator's own network.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Protocol

from farebox import optional
from farebox.net.socks import VettingSocksProxy


class WalletError(Exception):
    """The wallet refused, the relay was down, or no answer came in time."""


class WalletClient(Protocol):
    async def pay_invoice(self, uri: str, bolt11: str, timeout_s: float) -> str:
        """Ask the wallet to pay; returns the preimage or raises WalletError."""
        ...

    async def close(self) -> None: ...


class NostrWallet:
    """NIP-47 `pay_invoice` over the wallet's relay(s), NIP-44 encrypted (nostr-sdk)."""

    def __init__(self, proxy: VettingSocksProxy) -> None:
        self.proxy = proxy

    async def close(self) -> None:
        await self.proxy.close()

    async def pay_invoice(self, uri: str, bolt11: str, timeout_s: float) -> str:
        nostr = optional.nostr_sdk()
        try:
            parsed = nostr.NostrWalletConnectUri.parse(uri)
            secret = parsed.secret().to_hex()
        except Exception as exc:
            raise WalletError("the stored connection string cannot be read") from exc
        relays = nostr.RelayOptions().proxy(nostr.Proxy.all(await self.proxy.address()))
        builder = nostr.NostrWalletConnectBuilder(parsed).relay(relays)
        nwc = builder.timeout(timedelta(seconds=timeout_s)).build()
        try:
            reply = await asyncio.wait_for(
                nwc.pay_invoice(nostr.PayInvoiceRequest(id=None, invoice=bolt11, amount=None)),
                timeout_s + 1,
            )
        except TimeoutError as exc:
            raise WalletError(f"no answer from the wallet within {timeout_s:g} s") from exc
        except Exception as exc:
            raise WalletError(_clean(str(exc), secret)) from exc
        finally:
            with contextlib.suppress(Exception):
                await nwc.client().shutdown()
        return str(reply.preimage)


def _clean(message: str, secret: str) -> str:
    """Error text from the library, without the secret (never log or store it)."""
    text = message.replace(secret, "<secret>")
    if text.startswith("NostrSdkError.Generic("):
        text = text[len("NostrSdkError.Generic(") : -1].strip("'\"")
    return text[:300] or "the wallet call failed"
