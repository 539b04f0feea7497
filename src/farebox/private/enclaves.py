"""The catalog's enclaves (ehbp providers): their attestation bundles and HPKE keys, relayed.

Both are public and change only when the enclave restarts or rotates its key, so each is
fetched at most once per `CACHE_TTL_S` (concurrent misses share one fetch) and served from
memory; a 422 key mismatch drops them at once, so a client that refetches after it gets the
new ones. The bytes pass through unchanged: the client verifies them, the gateway only hashes
the bundle (the fingerprint on each private query's history row).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp

from farebox.catalog.model import Catalog, CatalogModel, ProviderConfig
from farebox.errors import UpstreamError
from farebox.private.attestation import fingerprint
from farebox.private.ehbp import KEYS_MEDIA_TYPE, KEYS_PATH

CACHE_TTL_S = 60.0
MAX_DOCUMENT_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Document:
    body: bytes
    content_type: str
    fetched_at: float


class _Cached:
    """One URL's document, fetched once per TTL."""

    def __init__(self, url: str, accept: str, ttl_s: float, clock: Callable[[], float]) -> None:
        self.url = url
        self.accept = accept
        self.ttl_s = ttl_s
        self.clock = clock
        self.value: Document | None = None
        self._lock = asyncio.Lock()

    def fresh(self) -> Document | None:
        value = self.value
        if value is not None and self.clock() - value.fetched_at < self.ttl_s:
            return value
        return None

    async def get(self, session: aiohttp.ClientSession, timeout_s: float, what: str) -> Document:
        value = self.fresh()
        if value is not None:
            return value
        async with self._lock:
            value = self.fresh()
            if value is not None:
                return value
            body, content_type = await _fetch(session, self.url, self.accept, timeout_s, what)
            self.value = Document(body, content_type, self.clock())
            return self.value


async def _fetch(
    session: aiohttp.ClientSession, url: str, accept: str, timeout_s: float, what: str
) -> tuple[bytes, str]:
    try:
        async with asyncio.timeout(timeout_s):
            async with session.get(url, headers={"Accept": accept}, allow_redirects=False) as reply:
                if reply.status != 200:
                    raise UpstreamError(
                        f"The enclave answered {reply.status} for its {what}. Try again later."
                    )
                body = await reply.content.read(MAX_DOCUMENT_BYTES + 1)
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise UpstreamError(f"The enclave's {what} is larger than expected.")
                content_type = reply.headers.get("Content-Type", accept)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UpstreamError(f"The enclave's {what} could not be fetched ({exc!r}).") from exc
    return body, content_type


class Enclave:
    """One ehbp provider: where it answers, and its cached bundle and keys."""

    def __init__(
        self,
        config: ProviderConfig,
        ttl_s: float = CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        attestation = config.attestation_url or config.base_url + "/attestation"
        self._bundle = _Cached(attestation, "application/json", ttl_s, clock)
        self._keys = _Cached(config.base_url + KEYS_PATH, KEYS_MEDIA_TYPE, ttl_s, clock)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def chat_url(self) -> str:
        return self.config.base_url + "/v1/chat/completions"

    def _timeout_s(self) -> float:
        return self.config.connect_timeout_s + self.config.first_byte_timeout_s

    async def bundle(self, session: aiohttp.ClientSession) -> Document:
        return await self._bundle.get(session, self._timeout_s(), "attestation bundle")

    async def keys(self, session: aiohttp.ClientSession) -> Document:
        return await self._keys.get(session, self._timeout_s(), "HPKE key configuration")

    def fingerprint(self) -> str | None:
        """The fingerprint of the bundle served most recently (None before the first fetch)."""
        value = self._bundle.value
        return fingerprint(value.body) if value is not None else None

    def invalidate(self) -> None:
        """The enclave refused a key (422): fetch its keys and bundle again next time."""
        self._bundle.value = None
        self._keys.value = None


class Enclaves:
    """Every ehbp provider of the catalog, and which one each private model routes to."""

    def __init__(self, enclaves: Mapping[str, Enclave], default: str | None) -> None:
        self._by_name = dict(enclaves)
        self.default_name = default
        self._session: aiohttp.ClientSession | None = None

    @staticmethod
    def from_catalog(catalog: Catalog) -> Enclaves:
        enclaves = {
            name: Enclave(config)
            for name, config in catalog.providers.items()
            if config.kind == "ehbp"
        }
        first = next((m for m in catalog.models.values() if m.private), None)
        return Enclaves(enclaves, first.routes[0].provider if first is not None else None)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None), auto_decompress=False, trust_env=True
            )
        return self._session

    def for_model(self, model: CatalogModel) -> Enclave:
        return self._by_name[model.routes[0].provider]

    def default(self) -> Enclave | None:
        """The enclave `/private/attestation` and `/.well-known/hpke-keys` speak for: the one
        the first private model of the catalog routes to."""
        return self._by_name.get(self.default_name) if self.default_name else None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
