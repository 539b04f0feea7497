"""The private proxy's view of the enclave: fetched through the gateway, verified locally.

The bundle and the HPKE key come through the gateway (it relays the enclave's), the policy does
not: it is the package's or the user's file. Until a bundle verifies against it, the proxy
sends nothing; after, it seals every request to the key the bundle binds (a pinned key: a key
the gateway serves later is used only once a new bundle binding it verifies).
"""

from __future__ import annotations

import asyncio

import aiohttp

from farebox.private.attestation import AttestationError, VerifiedEnclave, verify_bundle
from farebox.private.ehbp import KEYS_PATH
from farebox.private.policy import Policy

MAX_DOCUMENT_BYTES = 1024 * 1024
FETCH_TIMEOUT_S = 30.0


class Attester:
    def __init__(self, gateway_url: str, policy: Policy, session: aiohttp.ClientSession) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self.policy = policy
        self.session = session
        self.enclave: VerifiedEnclave | None = None
        self.reason: str | None = None  # why the last verification failed
        self._lock = asyncio.Lock()

    async def _get(self, path: str, what: str) -> bytes:
        try:
            async with asyncio.timeout(FETCH_TIMEOUT_S):
                async with self.session.get(self.gateway_url + path, allow_redirects=False) as r:
                    body = await r.content.read(MAX_DOCUMENT_BYTES + 1)
                    if r.status != 200:
                        raise AttestationError(
                            f"the gateway answered {r.status} for the enclave's {what}: "
                            + body[:300].decode("utf-8", "replace")
                        )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AttestationError(f"cannot fetch the enclave's {what} ({exc!r})") from exc
        if len(body) > MAX_DOCUMENT_BYTES:
            raise AttestationError(f"the enclave's {what} is too large")
        return body

    async def verify(self) -> VerifiedEnclave:
        """Fetch the bundle and the served key, and verify; AttestationError says why not."""
        async with self._lock:
            try:
                if not self.policy.trusts_anything:
                    raise AttestationError(
                        f"{self.policy.source} trusts no enclave root or measurement; run with "
                        "--policy FILE naming the enclave you trust"
                    )
                bundle = await self._get("/private/attestation", "attestation bundle")
                keys = await self._get("/private" + KEYS_PATH, "HPKE key")
                verified = verify_bundle(bundle, keys, self.policy)
            except AttestationError as exc:
                self.enclave = None
                self.reason = str(exc)
                raise
            self.enclave = verified
            self.reason = None
            return verified

    async def ready(self) -> VerifiedEnclave:
        enclave = self.enclave
        return enclave if enclave is not None else await self.verify()

    def status(self) -> dict[str, object]:
        enclave = self.enclave
        return {
            "attested": enclave is not None,
            "reason": self.reason,
            "policy": self.policy.source,
            "simulator_policy": self.policy.simulator,
            "measurement": enclave.measurement if enclave else None,
            "attestation_fingerprint": enclave.fingerprint if enclave else None,
            "hpke_public_key": enclave.key_config.public_key.hex() if enclave else None,
        }
