"""Top-ups as the API, the poller and NWC see them: open an invoice, reconcile it, credit once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from farebox.db.database import Database
from farebox.errors import NotFound, quoted
from farebox.inputs import plausible_id
from farebox.observe.hooks import CountEvents
from farebox.payments import invoices
from farebox.payments.amounts import (
    METHODS,
    MethodSpec,
    check_currency,
    check_limits,
    parse_amount,
    parse_currency,
    quote,
)
from farebox.payments.errors import MethodUnavailable, PaymentBackendError
from farebox.payments.invoices import TopupInvoice
from farebox.payments.rates import RateSource
from farebox.payments.types import InvoiceRequest, Method, PaymentBackend

log = logging.getLogger("farebox.payments")


@dataclass(frozen=True, slots=True)
class MethodOffer:
    spec: MethodSpec
    backend: PaymentBackend


class TopupService:
    def __init__(
        self,
        db: Database,
        backends: Sequence[PaymentBackend],
        rates: RateSource,
        *,
        expiry_s: int = 900,
        lightning_backend: str | None = None,
        poll_interval_s: float = 15.0,
    ) -> None:
        self.db = db
        self.poll_interval_s = poll_interval_s
        self.backends = {b.name: b for b in backends}
        self.rates = rates
        self.expiry_s = expiry_s
        self.offers = self._route_methods(backends, lightning_backend)
        self._inflight: dict[str, asyncio.Future[TopupInvoice]] = {}
        self.events = CountEvents()  # top-ups by outcome (observe.install sets the metrics')

    @staticmethod
    def _route_methods(
        backends: Sequence[PaymentBackend], lightning_backend: str | None
    ) -> dict[Method, MethodOffer]:
        offers: dict[Method, MethodOffer] = {}
        ordered = sorted(backends, key=lambda b: b.name != lightning_backend)
        for backend in ordered:
            for method in backend.capabilities.methods:
                offers.setdefault(method, MethodOffer(METHODS[method], backend))
        return offers

    def backend(self, name: str) -> PaymentBackend | None:
        return self.backends.get(name)

    # -- opening invoices ------------------------------------------------------------------

    async def create(
        self, account_id: str, method: Method, amount: object, currency: object, source: str = "api"
    ) -> TopupInvoice:
        offer = self.offers.get(method)
        if offer is None:
            raise MethodUnavailable(
                f"{METHODS[method].label} top-ups are not enabled on this server. "
                "See GET /topup/payment-methods.",
                param="method",
            )
        cur = parse_currency(currency)
        check_currency(offer.spec, cur)
        value = parse_amount(amount, cur)
        q = quote(value, cur, await self.rates.btc_usd())
        check_limits(offer.spec, q.usd_nanos)
        invoice_id = "inv_" + secrets.token_hex(12)
        request = InvoiceRequest(
            reference=invoice_id,
            method=method,
            amount=q.amount,
            currency=q.currency,
            sats=q.sats,
            expiry_s=self.expiry_s,
            memo=f"farebox top-up {invoice_id}",
        )
        created = await offer.backend.create_invoice(request)
        now = time.time()
        row = TopupInvoice(
            id=invoice_id,
            account_id=account_id,
            backend=offer.backend.name,
            backend_invoice_id=created.backend_invoice_id,
            method=method.value,
            currency=cur.value,
            amount=_plain(value),
            sats=q.sats,
            usd_nanos=q.usd_nanos,
            btc_usd=_plain(q.btc_usd),
            bolt11=created.bolt11,
            address=created.address,
            payment_uri=created.payment_uri,
            amount_due=created.amount_due,
            checkout_url=created.checkout_url,
            status=invoices.PENDING,
            overpaid=False,
            source=source,
            transfer_id=None,
            created_at=now,
            expires_at=created.expires_at,
            updated_at=now,
            checked_at=None,
            paid_at=None,
        )
        await self.db.write(invoices.insert_invoice, row)
        self.events.topup("created")
        log.info(
            "top-up invoice %s opened with %s for %s (%s %s)",
            invoice_id,
            offer.backend.name,
            account_id,
            row.amount,
            row.currency,
        )
        return row

    # -- reading and reconciling -------------------------------------------------------------

    async def status(self, account_id: str, invoice_id: str) -> TopupInvoice:
        invoice = None
        if plausible_id(invoice_id):
            invoice = await self.db.read(invoices.find_for_account, account_id, invoice_id)
        if invoice is None:
            raise NotFound(
                f"No top-up invoice {quoted(invoice_id)} on this account.", param="invoice_id"
            )
        if invoice.is_paid:
            return invoice
        try:
            return await self.reconcile(invoice)
        except PaymentBackendError as exc:
            log.warning("status of %s: the backend is unreachable (%s)", invoice.id, exc.message)
            return invoice  # what we last knew; the reconciler keeps trying

    async def reconcile(self, invoice: TopupInvoice) -> TopupInvoice:
        """Ask the backend, record the answer, credit if paid.

        Concurrent calls for one invoice in this process share backend calls: a caller that
        finds a check running waits for it, and if that one did not find the invoice paid, it
        joins (or starts) a check that began after it arrived, so no news is missed. Across
        processes, the transfer id keeps the credit to one.
        """
        running = self._inflight.get(invoice.id)
        if running is not None:
            with contextlib.suppress(Exception):
                result = await asyncio.shield(running)
                if result.is_paid:
                    return result
            running = self._inflight.get(invoice.id)
            if running is not None:
                return await asyncio.shield(running)
        future: asyncio.Future[TopupInvoice] = asyncio.get_running_loop().create_future()
        self._inflight[invoice.id] = future
        try:
            result = await self._reconcile(invoice)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            if self._inflight.get(invoice.id) is future:
                del self._inflight[invoice.id]
        future.set_result(result)
        return result

    async def _reconcile(self, invoice: TopupInvoice) -> TopupInvoice:
        backend = self.backends.get(invoice.backend)
        if backend is None:
            log.warning(
                "invoice %s belongs to backend %s, which is not configured",
                invoice.id,
                invoice.backend,
            )
            return invoice
        status = await backend.invoice_status(invoice.backend_invoice_id)
        after, credited = await self.db.write(invoices.apply_status, invoice.id, status)
        if credited:
            log.info("top-up invoice %s paid: credited %s", invoice.id, invoice.account_id)
            self.events.topup("paid")
        elif after.status != invoice.status and after.status != invoices.PAID:
            self.events.topup(after.status)
        return after

    async def webhook(
        self, backend_name: str, headers: Mapping[str, str], body: bytes
    ) -> TopupInvoice:
        backend = self.backends.get(backend_name)
        if backend is None:
            raise NotFound(f"No payment backend {quoted(backend_name)} is configured.")
        backend_invoice_id = backend.webhook_invoice_id(headers, body)
        invoice = None
        if plausible_id(backend_invoice_id):
            invoice = await self.db.read(
                invoices.find_by_backend_id, backend_name, backend_invoice_id
            )
        if invoice is None:
            raise NotFound(
                f"No top-up invoice matches {backend_name} invoice {quoted(backend_invoice_id)}."
            )
        if invoice.is_paid:
            return invoice
        return await self.reconcile(invoice)

    async def poll_once(self, min_age_s: float = 0.0, limit: int = 100) -> int:
        """Reconcile pending invoices (those whose webhook never came); returns how many were
        checked. One failing backend does not stop the others."""
        due = await self.db.read(invoices.due_for_check, time.time() - min_age_s, limit)
        for invoice in due:
            try:
                await self.reconcile(invoice)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("could not reconcile top-up invoice %s: %r", invoice.id, exc)
                await self.db.write(invoices.mark_checked, invoice.id, time.time())
        return len(due)

    async def close(self) -> None:
        for backend in self.backends.values():
            await backend.close()


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
