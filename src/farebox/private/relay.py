"""The blind relay: a sealed chat request in, held for, forwarded unchanged, billed from usage.

    authenticate (the route) -> route by X-Private-Model -> read the sealed body (bounded) and
    check its framing -> HOLD the worst case (bounds.quote) -> POST the ciphertext and the EHBP
    header to the enclave, asking for usage -> relay the sealed answer as it arrives -> settle
    from the enclave's usage header or trailer (or the stated estimate, marked) with the
    history row carrying the enclave's attestation fingerprint.

The gateway holds no key that opens either body, logs no body, and stores only counts.
An enclave that answers non-2xx (its own sealed error, a 422 key mismatch, a 5xx) costs nothing;
the answer passes through unchanged so EHBP clients can read it (and refetch keys on a 422).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from farebox.billing.charge import Charge, charge_ids, insufficient_funds, key_limit_reached
from farebox.billing.leases import LeaseKeeper
from farebox.billing.losses import LossBook, loss_of
from farebox.billing.pricing import TokenUsage
from farebox.catalog.model import Catalog, CatalogModel
from farebox.errors import InvalidRequest, UpstreamError
from farebox.keys.store import ApiKey, KeyStore
from farebox.ledger.service import Ledger
from farebox.ledger.sweep import encode_recovery
from farebox.ledger.types import KeyBudget, QueryRecord
from farebox.limits.gate import KeyGate
from farebox.limits.scopes import model_names
from farebox.money import format_usd, nanos_to_usd
from farebox.net.egress import EgressProxies
from farebox.net.stream_cut import StreamCut
from farebox.private import bounds
from farebox.private.ehbp import (
    ENCAPSULATED_KEY_HEADER,
    RESPONSE_NONCE_HEADER,
    EhbpError,
    FrameReader,
)
from farebox.private.enclaves import Enclave, Enclaves
from farebox.private.usage import (
    ENCLAVE_MODEL_HEADER,
    PRIVATE_MODEL_HEADER,
    USAGE_HEADER,
    USAGE_REQUEST_HEADER,
    parse_usage,
)
from farebox.providers.h1 import H1Error, H1Pool, H1Response

_ENC_HEX = re.compile(r"^[0-9a-f]{64}$")
MAX_ERROR_BYTES = 64 * 1024
ATTESTATION_HEADER = "x-farebox-attestation"

# How a relayed answer ended; without a usage report, the reconcile mark says which.
COMPLETE = "no_usage"
ENCLAVE_CUT = "enclave_cut"
CLIENT_GONE = "client_disconnect"
RECOVERED = "recovered"
MODEL_MISMATCH = "model_mismatch"
ABOVE_HOLD = "usage_above_hold"


class EnclaveCut(StreamCut):
    """The enclave broke its answer off: the client's connection is broken off too (after the
    settlement), so it cannot take a cut answer for a whole one."""


@dataclass(slots=True)
class RelayReply:
    """What goes back to the client: a status, clear headers, and the sealed body's bytes."""

    status: int
    headers: dict[str, str]
    body: AsyncIterator[bytes]
    request_id: str


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


class PrivateRelay:
    def __init__(
        self,
        catalog: Catalog,
        enclaves: Enclaves,
        ledger: Ledger,
        keys: KeyStore,
        hold_timeout_s: float,
        leases: LeaseKeeper | None = None,
        losses: LossBook | None = None,
        gate: KeyGate | None = None,
    ) -> None:
        self.catalog = catalog
        self.gate = gate  # keys' model scopes and rate limits (limits/gate.py)
        self.enclaves = enclaves
        self.ledger = ledger
        self.keys = keys
        self.hold_timeout_s = hold_timeout_s
        self.leases = leases
        self.losses = losses
        self.pool = H1Pool(connect_timeout_s=10.0, proxies=EgressProxies.from_environ())
        self._ids = charge_ids()

    async def close(self) -> None:
        await self.pool.close()
        await self.enclaves.close()

    def route(self, model_header: str | None) -> tuple[CatalogModel, Enclave]:
        """The private model the client named in clear, and the enclave it routes to."""
        if not model_header or not model_header.strip():
            raise InvalidRequest(
                f"Name the model in the {PRIVATE_MODEL_HEADER} header (e.g. private/kimi-k2-5): "
                "the body is sealed, so the gateway routes by that header alone.",
                param=PRIVATE_MODEL_HEADER,
            )
        model = self.catalog.resolve(model_header.strip()[:200])
        if not model.private:
            raise InvalidRequest(
                f"{model.id} is not a private model; send it to /v1/chat/completions instead. "
                'Private models are listed by GET /v1/models with "private": true.',
                param=PRIVATE_MODEL_HEADER,
            )
        return model, self.enclaves.for_model(model)

    def _charge(self, key: ApiKey, model: CatalogModel) -> Charge:
        async def reload() -> KeyBudget:
            fresh = await self.keys.reload(key.id, key.account_id)
            return fresh.budget()

        return Charge(
            ledger=self.ledger,
            request_id=self._ids.next(),
            leases=self.leases,
            account_id=key.account_id,
            key=key.budget(),
            hold_timeout_s=self.hold_timeout_s,
            reload_key=reload,
            admission=(self.gate.admission(key, model) if self.gate is not None else None),
        )

    async def preflight(
        self, key: ApiKey, model_header: str | None, body_bytes: int
    ) -> dict[str, Any]:
        """What a request of `body_bytes` sealed bytes would hold, checked against the key's
        model scope and rate limits (counting nothing), the balance and the key's limit; the
        same 403, 429 or 402 the relay would give, in plaintext any client reads
        (an EHBP client such as npm ehbp 0.1.7 cannot read the relay's own refusals)."""
        model, enclave = self.route(model_header)
        if self.gate is not None:  # the key's scope and rate limits, as the relay will judge them
            await self.gate.check(key, model_names(model))
        limit = bounds.quote(model, max(0, body_bytes))
        balance = await self.ledger.balance(key.account_id)
        if balance is None or balance.available < limit.hold:
            raise insufficient_funds(balance, limit.hold)
        if key.usage_limit is not None:
            left = key.usage_limit - key.current_period_usage() - key.period_pending
            if left < limit.hold:
                raise key_limit_reached(left, limit.hold)
        return {
            "ok": True,
            "model": model.id,
            "enclave_model": model.routes[0].upstream_model,
            "hold_usd": nanos_to_usd(limit.hold),
            "available_usd": nanos_to_usd(balance.available),
            "attestation_fingerprint": enclave.fingerprint(),
        }

    async def relay(
        self,
        key: ApiKey,
        model_header: str | None,
        enc_hex: str | None,
        content_type: str | None,
        body: bytes,
    ) -> RelayReply:
        model, enclave = self.route(model_header)
        if not enc_hex or not _ENC_HEX.match(enc_hex.strip().lower()):
            raise InvalidRequest(
                f"The body must be EHBP-sealed, with its {ENCAPSULATED_KEY_HEADER} header (64 hex "
                "digits). Run `farebox private-proxy` or another EHBP client.",
                param=ENCAPSULATED_KEY_HEADER,
            )
        sealed = FrameReader()
        try:
            sealed.feed(body)
            sealed.finish()
        except EhbpError as exc:
            raise InvalidRequest(f"The body is not EHBP frames ({exc}).") from exc
        if sealed.frames == 0:
            raise InvalidRequest("The sealed body is empty.")
        limit = bounds.quote(model, sealed.plaintext_bytes)
        charge = self._charge(key, model)
        await charge.open(limit.hold, limit.hold)
        try:
            attestation = enclave.fingerprint()
            if attestation is None:
                attestation = await self._fingerprint(enclave)
            reply = await self._forward(enclave, model, enc_hex.strip().lower(), content_type, body)
        except BaseException:
            charge.void()
            raise
        if not 200 <= reply.status < 300:
            return await self._refused(enclave, reply, charge)
        flow = _Flow(charge, model, limit, sealed.plaintext_bytes, attestation, reply, enclave)
        flow.losses = self.losses
        headers = {
            "content-type": reply.header("content-type") or "application/octet-stream",
            "cache-control": "no-cache",
            "x-accel-buffering": "no",
            "x-farebox-request-id": charge.request_id,
        }
        nonce = reply.header(RESPONSE_NONCE_HEADER)
        if nonce is not None:
            headers[RESPONSE_NONCE_HEADER.lower()] = nonce
        if attestation is not None:
            headers[ATTESTATION_HEADER] = attestation
        if flow.usage_header is not None:
            headers[USAGE_HEADER.lower()] = flow.usage_header
            reported = flow.reported_cost()
            if reported is not None:
                headers["x-farebox-cost"] = format_usd(min(reported, charge.held))
        return RelayReply(reply.status, headers, flow.relay(), charge.request_id)

    async def _fingerprint(self, enclave: Enclave) -> str | None:
        try:
            await enclave.bundle(self.enclaves.session)
        except UpstreamError:
            return None  # relayed all the same: the client verified the enclave itself
        return enclave.fingerprint()

    async def _forward(
        self,
        enclave: Enclave,
        model: CatalogModel,
        enc_hex: str,
        content_type: str | None,
        body: bytes,
    ) -> H1Response:
        config = enclave.config
        headers = {
            ENCAPSULATED_KEY_HEADER: enc_hex,
            "Content-Type": (content_type or "application/json")[:200],
            USAGE_REQUEST_HEADER: "true",
            ENCLAVE_MODEL_HEADER: model.routes[0].upstream_model,
        }
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        try:
            async with asyncio.timeout(config.connect_timeout_s + config.first_byte_timeout_s):
                return await self.pool.post(enclave.chat_url, body, headers)
        except (H1Error, TimeoutError, OSError) as exc:
            raise UpstreamError(
                f"The enclave did not answer ({type(exc).__name__}). Nothing was charged."
            ) from exc

    async def _refused(self, enclave: Enclave, reply: H1Response, charge: Charge) -> RelayReply:
        """The enclave refused or failed: nothing charged, its answer passed on unchanged."""
        charge.void()
        if reply.status == 422:
            enclave.invalidate()  # a rotated key: the next fetch gets the new bundle and keys
        chunks: list[bytes] = []
        size = 0
        try:
            while size <= MAX_ERROR_BYTES:
                data = await reply.readany(enclave.config.idle_timeout_s)
                if not data:
                    break
                chunks.append(data)
                size += len(data)
        except (H1Error, TimeoutError):
            pass
        finally:
            reply.close()
        headers = {"x-farebox-request-id": charge.request_id}
        for name in ("content-type", RESPONSE_NONCE_HEADER.lower()):
            value = reply.header(name)
            if value is not None:
                headers[name] = value
        return RelayReply(reply.status, headers, _once(b"".join(chunks)), charge.request_id)


class _Flow:
    """One relayed answer: counts what passed, then settles once, however it ended."""

    def __init__(
        self,
        charge: Charge,
        model: CatalogModel,
        limit: bounds.PrivateQuote,
        request_plaintext: int,
        attestation: str | None,
        reply: H1Response,
        enclave: Enclave,
    ) -> None:
        self.charge = charge
        self.model = model
        self.limit = limit
        self.request_plaintext = request_plaintext
        self.attestation = attestation
        self.reply = reply
        self.idle_timeout_s = enclave.config.idle_timeout_s
        self.usage_header = reply.header(USAGE_HEADER)
        media = (reply.header("content-type") or "").split(";", 1)[0].strip().lower()
        self.event_stream = media == "text/event-stream"
        self.counter: FrameReader | None = FrameReader()
        self.losses: LossBook | None = None
        charge.report_progress(self._progress)

    def reported_cost(self) -> int | None:
        usage = parse_usage(self.usage_header)
        if usage is None:
            return None
        return bounds.cost(
            self.model, _tokens(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
        )

    def _delivered(self) -> bounds.Delivered:
        counter = self.counter
        frames = counter.frames if counter is not None else 0
        plain = counter.plaintext_bytes if counter is not None else 0
        return bounds.Delivered(frames, plain, self.event_stream)

    def _record(self, usage: TokenUsage, reconcile: str | None) -> QueryRecord:
        return QueryRecord(
            model=self.model.id,
            input_count=usage.prompt_tokens,
            output_count=usage.completion_tokens,
            query_type="chat",
            query_source="api",
            is_free_model=self.model.is_free,
            attestation=self.attestation,
            reconcile=reconcile,
        )

    def _progress(self) -> tuple[int, str | None]:
        """For a crash mid-answer: the estimate so far, recorded with each hold renewal."""
        usage = bounds.estimate(self.model, self.limit, self.request_plaintext, self._delivered())
        cost = min(bounds.cost(self.model, usage), self.charge.held)
        return cost, encode_recovery(self._record(usage, RECOVERED))

    def _count(self, data: bytes) -> None:
        if self.counter is None:
            return
        try:
            self.counter.feed(data)
        except EhbpError:
            self.counter = None  # unreadable framing: the client will refuse it; stop counting

    async def relay(self) -> AsyncIterator[bytes]:
        ended = CLIENT_GONE
        try:
            while True:
                try:
                    data = await self.reply.readany(self.idle_timeout_s)
                except (H1Error, TimeoutError):
                    ended = ENCLAVE_CUT
                    break
                if not data:
                    ended = COMPLETE
                    break
                yield data
                self._count(data)  # only what the client was handed counts as delivered
        finally:
            self.reply.close()
            self.settle(ended)
        if ended == ENCLAVE_CUT:
            raise EnclaveCut("the enclave broke its answer off; the client's stream is cut too")

    def settle(self, ended: str) -> None:
        line = self.usage_header
        if line is None and ended == COMPLETE:
            line = self.reply.trailer(USAGE_HEADER)
        usage = parse_usage(line)
        reconcile: str | None
        if usage is not None:
            tokens = _tokens(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
            routed = self.model.routes[0].upstream_model
            reconcile = MODEL_MISMATCH if usage.model not in (None, routed) else None
        else:
            tokens = bounds.estimate(
                self.model, self.limit, self.request_plaintext, self._delivered()
            )
            reconcile = ended
        cost = bounds.cost(self.model, tokens)
        charged = min(cost, self.charge.held)
        if cost > charged:  # the enclave counted more than the bound: the operator's loss
            reconcile = reconcile or ABOVE_HOLD
            if self.losses is not None:
                self.losses.record_soon(loss_of(self.charge, self.model, tokens, cost, charged))
        self.charge.settle(charged, self._record(tokens, reconcile))


def _tokens(prompt: int, completion: int, cached: int) -> TokenUsage:
    return TokenUsage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached)
