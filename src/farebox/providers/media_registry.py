"""Adapters for the media-only provider kinds (fal, Runway, Deepgram, ElevenLabs, local), and the
router the modalities use: the chat router's providers plus these."""

from __future__ import annotations

from typing import Any

from farebox.catalog.model import Catalog, ProviderConfig
from farebox.local.provider import LocalProvider
from farebox.providers.deepgram import DeepgramProvider
from farebox.providers.elevenlabs import ElevenLabsProvider
from farebox.providers.fal import FalProvider
from farebox.providers.router import Router
from farebox.providers.runway import RunwayProvider


def build_media_provider(config: ProviderConfig) -> Any | None:
    """An adapter for a media-only kind, or None for kinds the chat router builds."""
    if config.kind == "fal":
        return FalProvider(config)
    if config.kind == "runway":
        return RunwayProvider(config)
    if config.kind == "deepgram":
        return DeepgramProvider(config)
    if config.kind == "elevenlabs":
        return ElevenLabsProvider(config)
    if config.kind == "local":
        return LocalProvider(config)
    return None


def media_router(catalog: Catalog, chat_router: Router) -> tuple[Router, Router]:
    """(a Router over every provider, a Router over only the media-only ones to close).

    The chat router's providers are shared, not rebuilt; the chat router closes them.
    """
    own: dict[str, Any] = {}
    for name, config in catalog.providers.items():
        if name not in chat_router.providers:
            provider = build_media_provider(config)
            if provider is not None:
                own[name] = provider
    return Router({**chat_router.providers, **own}), Router(own)
