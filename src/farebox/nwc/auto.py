"""Auto top-up: when a settled request leaves an account under its threshold, open a Lightning
invoice, have the customer's wallet pay it over NWC, and credit on the backend's confirmation.

A wallet's relays are vetted by the SSRF guard when it connects and again before each attempt,
before any invoice is opened (nwc/relays.py); the relay connections themselves go through the
vetting proxy (nwc/wallet.py).

Never in a request's way: the settle listener only schedules a check (debounced per account);
one attempt at a time per account (a database lease, so across replicas too); failures are
recorded and retried with exponential backoff by a background loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from farebox.db.database import Database
from farebox.errors import FareboxError, NotFound
from farebox.keys.secrets import KeyCipher
from farebox.ledger.service import Ledger
from farebox.ledger.types import Settlement
from farebox.money import NANOS_PER_USD
from farebox.net.ssrf import FetchPolicy, FetchRefused
from farebox.nwc import store
from farebox.nwc.relays import vet_relays
from farebox.nwc.store import NwcAttempt, NwcConnection
from farebox.nwc.uri import NwcUri
from farebox.nwc.wallet import WalletClient, WalletError
from farebox.observe.hooks import CountEvents
from farebox.payments.invoices import TopupInvoice
from farebox.payments.service import TopupService
from farebox.payments.types import Method

log = logging.getLogger("farebox.nwc")


@dataclass(frozen=True)
class AutoTopupConfig:
    debounce_s: float = 0.5
    pay_timeout_s: float = 30.0
    confirm_timeout_s: float = 10.0
    backoff_base_s: float = 30.0
    backoff_max_s: float = 3600.0
    retry_interval_s: float = 5.0

    @property
    def lease_s(self) -> float:
        return self.pay_timeout_s + self.confirm_timeout_s + 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AutoTopupConfig:
        def num(name: str, default: float) -> float:
            raw = env.get(name)
            return float(raw) if raw else default

        return cls(
            debounce_s=num("FAREBOX_NWC_DEBOUNCE_S", cls.debounce_s),
            pay_timeout_s=num("FAREBOX_NWC_TIMEOUT_S", cls.pay_timeout_s),
            confirm_timeout_s=num("FAREBOX_NWC_CONFIRM_S", cls.confirm_timeout_s),
            backoff_base_s=num("FAREBOX_NWC_BACKOFF_S", cls.backoff_base_s),
            backoff_max_s=num("FAREBOX_NWC_BACKOFF_MAX_S", cls.backoff_max_s),
            retry_interval_s=num("FAREBOX_NWC_RETRY_S", cls.retry_interval_s),
        )

    def backoff(self, failures: int) -> float:
        return float(min(self.backoff_max_s, self.backoff_base_s * 2 ** max(0, failures - 1)))


class AutoTopup:
    def __init__(
        self,
        db: Database,
        ledger: Ledger,
        topups: TopupService,
        cipher: KeyCipher,
        wallet: WalletClient,
        config: AutoTopupConfig | None = None,
        relay_policy: FetchPolicy | None = None,
    ) -> None:
        self.db = db
        self.ledger = ledger
        self.topups = topups
        self.cipher = cipher
        self.wallet = wallet
        self.config = config or AutoTopupConfig()
        self.relay_policy = relay_policy or FetchPolicy()
        self._scheduled: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self.events = CountEvents()  # attempts by outcome (observe.install sets the metrics')

    # -- customer settings -----------------------------------------------------------------

    async def connect(
        self, account_id: str, uri: NwcUri, threshold_nanos: int, topup_nanos: int
    ) -> NwcConnection:
        await vet_relays(uri.relays, self.relay_policy)
        saved = await self.db.write(
            store.save_connection,
            account_id,
            uri.wallet_pubkey,
            uri.relays,
            self.cipher.encrypt(uri.raw),
            threshold_nanos,
            topup_nanos,
        )
        self.schedule(account_id)  # the balance may already be under the threshold
        return saved

    async def get(self, account_id: str) -> tuple[NwcConnection | None, list[NwcAttempt]]:
        connection = await self.db.read(store.get_connection, account_id)
        if connection is None:
            return None, []
        return connection, await self.db.read(store.recent_attempts, account_id)

    async def disconnect(self, account_id: str) -> None:
        if not await self.db.write(store.delete_connection, account_id):
            raise NotFound("No NWC wallet is connected to this account.")

    # -- triggering --------------------------------------------------------------------------

    def on_settled(self, settlements: Sequence[Settlement]) -> None:
        """The ledger's settle listener: quick, never raises, never waits."""
        for settlement in settlements:
            if settlement.actual > 0:
                self.schedule(settlement.account_id)

    def schedule(self, account_id: str) -> None:
        if account_id in self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._scheduled.add(account_id)
        task = loop.create_task(self._check_later(account_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check_later(self, account_id: str) -> None:
        try:
            await asyncio.sleep(self.config.debounce_s)
        finally:
            self._scheduled.discard(account_id)
        try:
            await self.check(account_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("auto top-up check failed for an account")

    async def check(self, account_id: str) -> NwcAttempt | None:
        """Top up `account_id` if it is under its threshold and no attempt runs or waits."""
        connection = await self.db.read(store.get_connection, account_id)
        if connection is None:
            return None
        await self.ledger.flush()
        balance = await self.ledger.balance(account_id)
        if balance is None or balance.available >= connection.threshold_nanos:
            return None
        claimed = await self.db.write(store.claim, account_id, time.time(), self.config.lease_s)
        if claimed is None:
            return None
        return await self._attempt(claimed)

    async def _attempt(self, connection: NwcConnection) -> NwcAttempt:
        account_id = connection.account_id
        attempt_id = "nwc_" + secrets.token_hex(12)
        started = time.time()
        await self.db.write(store.start_attempt, attempt_id, account_id, started)
        invoice: TopupInvoice | None = None
        outcome, error = "failed", None
        try:
            await vet_relays(connection.relays, self.relay_policy)
            usd = Decimal(connection.topup_nanos) / NANOS_PER_USD
            invoice = await self.topups.create(
                account_id, Method.LIGHTNING, format(usd, "f"), "USD", source="nwc"
            )
            if invoice.bolt11 is None:
                raise WalletError("the Lightning backend returned no BOLT11 invoice")
            uri = self.cipher.decrypt(connection.uri_encrypted)
            await self.wallet.pay_invoice(uri, invoice.bolt11, self.config.pay_timeout_s)
            invoice = await self._confirm(invoice)
            if invoice.is_paid:
                outcome = "paid"
            else:
                outcome, error = "unconfirmed", "the wallet paid; the backend has not confirmed yet"
        except WalletError as exc:
            error = f"wallet: {exc}"
        except FetchRefused as exc:
            error = f"relay refused: {exc.message}"
        except FareboxError as exc:
            error = f"invoice: {exc.message}"
        except asyncio.CancelledError:
            error = "interrupted (shutdown)"
            raise
        except Exception as exc:
            log.exception("auto top-up attempt failed unexpectedly")
            error = f"unexpected: {type(exc).__name__}"
        finally:
            now = time.time()
            retry_at = None
            if outcome != "paid":
                retry_at = now + self.config.backoff(connection.failures + 1)
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    self.db.write(
                        functools.partial(
                            store.finish_attempt,
                            outcome=outcome,
                            invoice_id=invoice.id if invoice else None,
                            error=error,
                            retry_at=retry_at,
                            now=now,
                        ),
                        attempt_id,
                        account_id,
                    )
                )
            self.events.nwc_attempt(outcome)
            if outcome == "paid":
                log.info(
                    "auto top-up paid for an account (invoice %s)", invoice.id if invoice else ""
                )
            else:
                log.warning("auto top-up failed for an account: %s", error)
        invoice_id = invoice.id if invoice else None
        return NwcAttempt(attempt_id, account_id, invoice_id, started, now, outcome, error)

    async def _confirm(self, invoice: TopupInvoice) -> TopupInvoice:
        """Credit only on the backend's word: re-check until paid or the confirm timeout."""
        deadline = time.monotonic() + self.config.confirm_timeout_s
        while True:
            invoice = await self.topups.reconcile(invoice)
            if invoice.is_paid or invoice.status != "pending" or time.monotonic() > deadline:
                return invoice
            await asyncio.sleep(0.2)

    # -- retries -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._retry_loop())

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loop_task = None
        await self.wallet.close()

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.retry_interval_s)
            try:
                for account_id in await self.db.read(store.due_retries, time.time()):
                    self.schedule(account_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("looking for auto top-up retries failed; will retry")
