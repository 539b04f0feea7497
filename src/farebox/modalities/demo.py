"""Media models for `farebox serve --demo`: the catalog's embeddings, audio, speech, images and
video answered by the simulator, plus the keyless local models when the `local` extra is
installed."""

from __future__ import annotations

import dataclasses
from typing import Any

from farebox.catalog.loader import catalog_from_dict, load_catalog
from farebox.catalog.model import Catalog, ProviderConfig, Route
from farebox.local import availability
from farebox.local.provider import EMBEDDING_MODEL, STT_MODEL, TTS_MODEL

_BASE = {"date_added": "2026-01-01", "context": 8191, "max_output": 0}
SIM_PROVIDERS = {
    # the simulator's endpoint for each upstream wire format a media model may use
    "openai": ("sim-media", "/v1"),
    "deepgram": ("sim-media-deepgram", "/v1"),
    "elevenlabs": ("sim-media-elevenlabs", "/v1"),
    "fal": ("sim-media-fal", "/fal"),
    "runway": ("sim-media-runway", "/v1"),
}


def sim_routed_media(shipped: Catalog, sim_url: str) -> Catalog:
    """Every media model of `shipped` (embeddings, audio, speech, images, video) at its own
    price, each route sent to the simulator endpoint that speaks its provider's wire format
    (the upstream model id is kept, as the simulator answers any)."""
    providers = {
        name: ProviderConfig(name=name, kind=kind, base_url=sim_url + path, api_key="sim")
        for kind, (name, path) in SIM_PROVIDERS.items()
    }
    models = {}
    for model_id, model in shipped.models.items():
        if model.type == "chat":
            continue
        routes = tuple(
            Route(SIM_PROVIDERS[shipped.providers[r.provider].kind][0], r.upstream_model)
            for r in model.routes
            if shipped.providers[r.provider].kind in SIM_PROVIDERS
        )
        if routes:
            models[model_id] = dataclasses.replace(model, routes=routes)
    return Catalog(models=models, providers=providers)


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


def media_demo_catalog(sim_url: str, shipped: Catalog | None = None) -> Catalog:
    """The shipped (or given) catalog's media models on the simulator, plus the keyless local
    models that are installed."""
    media = sim_routed_media(shipped or load_catalog(None, env={}), sim_url)
    local = catalog_from_dict(
        {"providers": {"local": {"kind": "local"}}, "models": local_models("local")}, env={}
    )
    return with_media(media, local)


def with_media(chat: Catalog, media: Catalog) -> Catalog:
    """The chat demo catalog plus the media one (media ids win where both define one)."""
    models = {k: v for k, v in chat.models.items() if k not in media.models}
    return Catalog(
        models={**models, **media.models}, providers={**chat.providers, **media.providers}
    )
