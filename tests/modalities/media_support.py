"""The media test catalog: embedding, audio, speech, image and video models on the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
from sqlalchemy import select

from farebox.catalog.loader import catalog_from_dict
from farebox.catalog.model import Catalog
from farebox.db.schema import queries

from support import NANOS, Gateway

EMBED_PRICE = {"input_per_1m": "100", "output_per_1m": "0"}  # $0.0001 per token


def media_catalog_dict(sim_url: str) -> dict[str, Any]:
    base = {"provider": "Test", "date_added": "2026-01-01", "context": 8191, "max_output": 0}
    embed = {**base, "type": "embedding", "price": EMBED_PRICE, "tokenizer": "cl100k_base"}
    image = {**base, "type": "image", "required": ["prompt"]}
    audio = {**base, "type": "audio", "provider": "Deepgram", "unit_prices": {"minute": "0.6"}}
    speech = {**base, "type": "speech"}
    video_params = {
        "duration": ["5", "10"],
        "quality": ["720p", "1080p"],
        "aspect_ratio": ["16:9", "9:16", "1:1"],
        "negative_prompt": [],
    }
    video = {
        **base,
        "type": "video",
        "required": ["prompt"],
        "parameters": video_params,
        "unit_prices": {"second:720p": "0.05", "second:1080p": "0.1"},
    }
    key = {"api_key_env": "SIM_KEY"}
    return {
        "providers": {
            "sim": {"kind": "openai", "base_url": f"{sim_url}/v1", **key},
            "sim503": {"kind": "openai", "base_url": f"{sim_url}/sim/status=503/v1", **key},
            "fal": {"kind": "fal", "base_url": f"{sim_url}/fal", **key},
            "dg": {"kind": "deepgram", "base_url": f"{sim_url}/v1", **key},
            "dgshort": {"kind": "deepgram", "base_url": f"{sim_url}/sim/report_ms=1000/v1", **key},
            "dg503": {"kind": "deepgram", "base_url": f"{sim_url}/sim/status=503/v1", **key},
            "eleven": {"kind": "elevenlabs", "base_url": f"{sim_url}/v1", **key},
            "falslow": {"kind": "fal", "base_url": f"{sim_url}/sim/job_ms=300/fal", **key},
            "falfail": {"kind": "fal", "base_url": f"{sim_url}/sim/job_fail=true/fal", **key},
            "falvideo": {"kind": "fal", "base_url": f"{sim_url}/sim/job_ms=1500/fal", **key},
            "falslowvideo": {"kind": "fal", "base_url": f"{sim_url}/sim/job_ms=6000/fal", **key},
            # every call (submit, each status poll) takes 1.5 s: a poll is nearly always in flight
            "falsleepy": {
                "kind": "fal",
                "base_url": f"{sim_url}/sim/job_ms=60000,latency_ms=1500/fal",
                **key,
            },
        },
        "models": {
            "openai/text-embedding-3-small": {
                **embed,
                "dimensions": 1536,
                "aliases": ["text-embedding-3-small"],
                "routes": [{"provider": "sim", "model": "text-embedding-3-small"}],
            },
            "fallback-embed": {
                **embed,
                "routes": [
                    {"provider": "sim503", "model": "text-embedding-3-small"},
                    {"provider": "sim", "model": "text-embedding-3-small"},
                ],
            },
            "failing-embed": {
                **embed,
                "routes": [{"provider": "sim503", "model": "text-embedding-3-small"}],
            },
            "sim-image": {
                **image,
                "parameters": {
                    "quality": ["medium", "low", "high"],
                    "size": ["1024x1024", "1536x1024", "1024x1536"],
                    "output_format": ["png", "jpeg", "webp"],
                    "image_url": [],
                },
                "unit_prices": {"image:low": "0.01", "image:medium": "0.04", "image:high": "0.17"},
                "routes": [{"provider": "sim", "model": "gpt-image-1"}],
            },
            "nano-banana": {
                **image,
                "parameters": {
                    "size": ["1:1", "16:9", "9:16"],
                    "resolution": ["1K", "2K"],
                    "negative_prompt": [],
                    "output_format": ["png", "jpeg", "webp"],
                    "image_url": [],
                },
                "unit_prices": {"image": "0.04", "image:2K": "0.08"},
                "routes": [{"provider": "falslow", "model": "fal-ai/nano-banana"}],
            },
            "nova-3": {
                **audio,
                "name": "Deepgram Nova-3",
                "routes": [{"provider": "dg", "model": "nova-3"}],
            },
            "nova-3-reports-1s": {**audio, "routes": [{"provider": "dgshort", "model": "nova-3"}]},
            "nova-2": {**audio, "routes": [{"provider": "dg", "model": "nova-2"}]},
            "whisper-1": {
                **audio,
                "provider": "OpenAI",
                "routes": [{"provider": "sim", "model": "whisper-1"}],
            },
            "failing-stt": {**audio, "routes": [{"provider": "dg503", "model": "nova-3"}]},
            "deepgram_aura_2": {
                **speech,
                "provider": "Deepgram",
                "voices": [
                    {"id": "aura-2-arcas-en", "name": "Arcas", "description": "Natural, Smooth"},
                    {"id": "aura-2-thalia-en", "name": "Thalia", "description": "Clear"},
                ],
                "aliases": ["aura-2-arcas-en", "aura-2-thalia-en"],
                "max_input_chars": 2000,
                "unit_prices": {"1k_chars": "0.03"},
                "routes": [{"provider": "dg", "model": "aura-2"}],
            },
            "eleven_turbo_v2_5": {
                **speech,
                "provider": "ElevenLabs",
                "voices": [{"id": "JBFqnCBsd6RMkjVDRZzb", "name": "George"}],
                "max_input_chars": 5000,
                "parameters": {"response_format": ["mp3", "pcm", "wav", "opus"], "speed": []},
                "unit_prices": {"1k_chars": "0.05"},
                "routes": [{"provider": "eleven", "model": "eleven_turbo_v2_5"}],
            },
            "tts-1": {
                **speech,
                "provider": "OpenAI",
                "voices": [{"id": "alloy", "name": "Alloy"}, {"id": "echo", "name": "Echo"}],
                "max_input_chars": 4096,
                "unit_prices": {"1k_chars": "0.015"},
                "routes": [{"provider": "sim", "model": "tts-1"}],
            },
            "kling-2.1-pro": {
                **video,
                "routes": [{"provider": "falvideo", "model": "fal-ai/kling-video/v2.1/pro"}],
            },
            "kling-i2v": {
                **video,
                "parameters": {**video_params, "image_url": []},
                "required": ["prompt", "image_url"],
                "routes": [{"provider": "fal", "model": "fal-ai/kling-video/i2v"}],
            },
            "slow-video": {
                **video,
                "routes": [{"provider": "falslowvideo", "model": "fal-ai/slow-video"}],
            },
            "sleepy-video": {
                **video,
                "routes": [{"provider": "falsleepy", "model": "fal-ai/sleepy-video"}],
            },
            "failing-video": {
                **video,
                "routes": [{"provider": "falfail", "model": "fal-ai/broken-video"}],
            },
            "failing-image": {
                **image,
                "unit_prices": {"image": "0.05"},
                "routes": [{"provider": "falfail", "model": "fal-ai/flux"}],
            },
        },
    }


def media_env(tmp: Path) -> dict[str, str]:
    """Media files under `tmp`, loopback fetches allowed (the sim and the gateway live there),
    and a quick video worker."""
    return {
        "FAREBOX_MEDIA_DIR": str(tmp / "media"),
        "FAREBOX_FETCH_ALLOW_HOSTS": "127.0.0.1",
        "FAREBOX_VIDEO_POLL_S": "0.1",
    }


def media_catalog(sim_url: str) -> Catalog:
    return catalog_from_dict(media_catalog_dict(sim_url), env={"SIM_KEY": "sim-upstream-key"})


def sdk(gw: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=gw.url + "/v1", max_retries=0)


def query_rows(gw: Gateway, credit_id: str) -> list[tuple[str, str, int]]:
    """(query_type, model, price) of the account's history rows, oldest first."""
    gw.loop.run(gw.services.ledger.flush())

    def read(conn: Any) -> list[tuple[str, str, int]]:
        rows = conn.execute(
            select(queries.c.query_type, queries.c.model, queries.c.price)
            .where(queries.c.account_id == gw.account_id(credit_id))
            .order_by(queries.c.id)
        )
        return [(r[0], r[1], int(r[2])) for r in rows]

    return list(gw.loop.run(gw.services.db.read(read)))


def cost_nanos(usd: float) -> int:
    return round(usd * NANOS)


def spent(gw: Gateway, credit_id: str, granted_nanos: int) -> int:
    """Nothing left reserved, history equals what left the balance, ledger clean; the spend."""
    balance, reserved = gw.nanos(credit_id)
    assert reserved == 0
    total = granted_nanos - balance
    assert gw.history_total_nanos(credit_id) == total
    report = gw.check()
    assert report.ok, report.problems
    return total
