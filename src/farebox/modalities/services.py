"""The modality services (embeddings, audio, images, video, media), built once by app.py."""

from __future__ import annotations

from dataclasses import dataclass

from farebox.catalog.model import Catalog
from farebox.embeddings.service import EmbeddingService
from farebox.keys.store import KeyStore
from farebox.ledger.service import Ledger
from farebox.modalities.paid import Payer
from farebox.providers.router import Router
from farebox.settings import Settings


@dataclass
class MediaServices:
    embeddings: EmbeddingService

    async def start(self) -> None:
        """Start background work (the video worker)."""

    async def stop(self) -> None:
        """Stop background work."""


def build_media_services(
    settings: Settings,
    catalog: Catalog,
    router: Router,
    ledger: Ledger,
    keys: KeyStore,
    secret: str,
) -> MediaServices:
    payer = Payer(ledger, keys, settings.hold_timeout_s)
    return MediaServices(embeddings=EmbeddingService(catalog, router, payer))
