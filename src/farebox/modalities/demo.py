"""Media models for `farebox serve --demo`: embeddings, audio, images and video answered by the
simulator, plus the keyless local models when the `local` extra is installed."""

from __future__ import annotations

from typing import Any

from farebox.catalog.loader import catalog_from_dict
from farebox.catalog.model import Catalog
from farebox.local import availability
from farebox.local.provider import EMBEDDING_MODEL, STT_MODEL, TTS_MODEL

_BASE = {"date_added": "2026-01-01", "context": 8191, "max_output": 0}
AURA_VOICES = [
    {"id": "aura-2-arcas-en", "name": "Arcas", "description": "Natural, Smooth, Clear"},
    {"id": "aura-2-thalia-en", "name": "Thalia", "description": "Clear, Confident, Energetic"},
    {"id": "aura-2-andromeda-en", "name": "Andromeda", "description": "Casual, Expressive"},
    {"id": "aura-2-helena-en", "name": "Helena", "description": "Caring, Natural, Friendly"},
    {"id": "aura-2-apollo-en", "name": "Apollo", "description": "Confident, Comfortable"},
    {"id": "aura-2-aries-en", "name": "Aries", "description": "Warm, Energetic, Caring"},
]


def sim_media_models(provider: str) -> dict[str, Any]:
    """Media models with PayPerQ-like prices, all routed to the simulator `provider`."""
    return {
        "openai/text-embedding-3-small": {
            **_BASE,
            "provider": "OpenAI",
            "type": "embedding",
            "tokenizer": "cl100k_base",
            "dimensions": 1536,
            "price": {"input_per_1m": "0.024", "output_per_1m": "0"},
            "aliases": ["text-embedding-3-small"],
            "routes": [{"provider": provider, "model": "text-embedding-3-small"}],
        },
        "nova-3": {
            **_BASE,
            "name": "Deepgram Nova-3",
            "provider": "Deepgram",
            "type": "audio",
            "unit_prices": {"minute": "0.0052"},
            "routes": [{"provider": f"{provider}-deepgram", "model": "nova-3"}],
        },
        "deepgram_aura_2": {
            **_BASE,
            "name": "Deepgram Aura 2",
            "provider": "Deepgram",
            "type": "speech",
            "voices": AURA_VOICES,
            "aliases": [v["id"] for v in AURA_VOICES],
            "max_input_chars": 2000,
            "unit_prices": {"1k_chars": "0.036"},
            "routes": [{"provider": f"{provider}-deepgram", "model": "aura-2"}],
        },
        "gpt-image-1": {
            **_BASE,
            "provider": "OpenAI",
            "type": "image",
            "required": ["prompt"],
            "parameters": {
                "quality": ["medium", "low", "high"],
                "size": ["1024x1024", "1536x1024", "1024x1536"],
                "output_format": ["png", "jpeg", "webp"],
                "image_url": [],
            },
            "unit_prices": {"image:low": "0.013", "image:medium": "0.05", "image:high": "0.2"},
            "routes": [{"provider": provider, "model": "gpt-image-1"}],
        },
        "nano-banana-2": {
            **_BASE,
            "provider": "Google",
            "type": "image",
            "required": ["prompt"],
            "parameters": {
                "size": ["1:1", "16:9", "9:16"],
                "resolution": ["1K", "2K", "4K"],
                "negative_prompt": [],
                "output_format": ["png", "jpeg", "webp"],
                "image_url": [],
            },
            "unit_prices": {"image": "0.0805", "image:4K": "0.161"},
            "routes": [{"provider": f"{provider}-fal", "model": "fal-ai/nano-banana"}],
        },
        "kling-2.1-pro": {
            **_BASE,
            "provider": "Kling",
            "type": "video",
            "required": ["prompt"],
            "parameters": {
                "duration": ["5", "10"],
                "quality": ["720p", "1080p"],
                "aspect_ratio": ["16:9", "9:16", "1:1"],
                "negative_prompt": [],
            },
            "unit_prices": {"second:720p": "0.0575", "second:1080p": "0.115"},
            "routes": [{"provider": f"{provider}-fal", "model": "fal-ai/kling-video/v2.1/pro"}],
        },
    }


def local_models(provider: str) -> dict[str, Any]:
    """The keyless local models that are installed, at operator-set prices."""
    models: dict[str, Any] = {}
    route = {"provider": provider}
    if availability.has_embeddings():
        models["local/all-minilm-l6-v2"] = {
            **_BASE,
            "context": 256,
            "name": "all-MiniLM-L6-v2 (local)",
            "provider": "Local",
            "type": "embedding",
            "price": {"input_per_1m": "0.01", "output_per_1m": "0"},
            "routes": [{**route, "model": EMBEDDING_MODEL}],
            "description": "384-dimension sentence embeddings, computed on this machine.",
        }
    if availability.has_transcription():
        models["local/pocketsphinx-en"] = {
            **_BASE,
            "name": "PocketSphinx US English (local)",
            "provider": "Local",
            "type": "audio",
            "unit_prices": {"minute": "0.001"},
            "routes": [{**route, "model": STT_MODEL}],
        }
    if availability.has_speech():
        models["local/espeak-ng"] = {
            **_BASE,
            "name": "eSpeak NG (local)",
            "provider": "Local",
            "type": "speech",
            "voices": [
                {"id": "en-us+m3", "name": "English (US), male"},
                {"id": "en-us", "name": "English (US)"},
                {"id": "en", "name": "English (GB)"},
                {"id": "de", "name": "German"},
                {"id": "fr", "name": "French"},
                {"id": "es", "name": "Spanish"},
            ],
            "max_input_chars": 5000,
            "unit_prices": {"1k_chars": "0"},
            "routes": [{**route, "model": TTS_MODEL}],
            "description": "Free: the operator set every price of this model to 0.",
        }
    return models


def media_demo_catalog(sim_url: str) -> Catalog:
    key = {"api_key_env": "FAREBOX_DEMO_SIM_KEY"}
    return catalog_from_dict(
        {
            "providers": {
                "sim-media": {"kind": "openai", "base_url": f"{sim_url}/v1", **key},
                "sim-media-deepgram": {"kind": "deepgram", "base_url": f"{sim_url}/v1", **key},
                "sim-media-fal": {"kind": "fal", "base_url": f"{sim_url}/fal", **key},
                "local": {"kind": "local"},
            },
            "models": {**sim_media_models("sim-media"), **local_models("local")},
        },
        env={"FAREBOX_DEMO_SIM_KEY": "sim"},
    )


def with_media(chat: Catalog, media: Catalog) -> Catalog:
    """The chat demo catalog plus the media one (media ids win where both define one)."""
    models = {k: v for k, v in chat.models.items() if k not in media.models}
    return Catalog(
        models={**models, **media.models}, providers={**chat.providers, **media.providers}
    )
