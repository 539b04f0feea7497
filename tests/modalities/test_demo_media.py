"""`farebox serve --demo` serves media models from the simulator (and local ones if installed)."""

from __future__ import annotations

import httpx

from farebox.demo import build_demo_catalog
from farebox.sim.server import SimServer

from media_support import media_env, sdk
from support import running_gateway


def test_demo_catalog_serves_every_modality(sim: SimServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    catalog = build_demo_catalog(sim.url)
    types = {m.type for m in catalog.models.values()}
    assert {"chat", "embedding", "audio", "speech", "image", "video"} <= types
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    with running_gateway(url, catalog, extra_env=media_env(tmp_path)) as gw:
        _credit_id, key = gw.create_account(5)
        client = sdk(gw, key)
        assert len(client.embeddings.create(model="text-embedding-3-small", input="hi").data) == 1
        image = client.images.generate(model="gpt-image-1", prompt="a lighthouse")
        assert image.data and image.data[0].url
        assert httpx.get(image.data[0].url, timeout=30).status_code == 200
        speech = client.audio.speech.create(
            model="deepgram_aura_2",
            voice="aura-2-thalia-en",
            input="Welcome to the demo.",  # type: ignore[arg-type]
        )
        assert len(speech.content) > 100
