"""The modality services (embeddings, audio, images, video, media), built once by app.py."""

from __future__ import annotations

from dataclasses import dataclass

from farebox.audio.speech import SpeechService
from farebox.audio.transcription import TranscriptionService
from farebox.catalog.model import Catalog
from farebox.db.database import Database
from farebox.embeddings.service import EmbeddingService
from farebox.images.service import ImageService
from farebox.keys.store import KeyStore
from farebox.ledger.service import Ledger
from farebox.limits.gate import KeyGate
from farebox.media.config import MediaConfig
from farebox.media.s3 import S3Config, S3Storage
from farebox.media.signing import MediaSigner, StatusSigner
from farebox.media.storage import LocalStorage, MediaStorage
from farebox.media.store import MediaStore
from farebox.modalities.paid import Payer
from farebox.providers.media_registry import media_router
from farebox.providers.router import Router
from farebox.settings import Settings
from farebox.video.service import VideoService
from farebox.video.store import VideoJobs
from farebox.video.worker import VideoWorker


@dataclass
class MediaServices:
    config: MediaConfig
    embeddings: EmbeddingService
    images: ImageService
    transcription: TranscriptionService
    speech: SpeechService
    videos: VideoService
    worker: VideoWorker
    media: MediaStore
    storage: MediaStorage
    own_providers: Router
    payer: Payer  # makes the Buyer of a keyed or a 402-paid request

    def base_url(self, request_base: str) -> str:
        """Where signed media URLs point: FAREBOX_PUBLIC_URL, else the request's base URL."""
        return self.config.public_url or request_base.rstrip("/")

    async def start(self) -> None:
        """Start background work (the video worker)."""
        self.worker.start()

    async def stop(self) -> None:
        """Stop background work and close the media-only upstream clients."""
        await self.worker.stop()
        await self.own_providers.close()
        await self.storage.close()


def build_media_services(
    settings: Settings,
    catalog: Catalog,
    router: Router,
    ledger: Ledger,
    keys: KeyStore,
    secret: str,
    db: Database,
    gate: KeyGate | None = None,
) -> MediaServices:
    config = MediaConfig.from_env(settings.extra_env, settings.database_url)
    payer = Payer(ledger, keys, settings.hold_timeout_s, gate)
    routes, own = media_router(catalog, router)
    s3 = S3Config.from_env(settings.extra_env)
    storage: MediaStorage = S3Storage(s3) if s3 is not None else LocalStorage(config.media_dir)
    store = MediaStore(db, storage, MediaSigner(secret))
    jobs = VideoJobs(db)
    poll_s = float(settings.extra_env.get("FAREBOX_VIDEO_POLL_S") or 2.0)
    return MediaServices(
        config=config,
        embeddings=EmbeddingService(catalog, routes, payer),
        images=ImageService(catalog, routes, payer, store, config.fetch),
        transcription=TranscriptionService(catalog, routes, payer),
        speech=SpeechService(catalog, routes, payer),
        videos=VideoService(
            catalog, routes, payer, jobs, store, config.fetch, StatusSigner(secret)
        ),
        worker=VideoWorker(jobs, routes, ledger, store, interval_s=poll_s),
        media=store,
        storage=storage,
        own_providers=own,
        payer=payer,
    )
