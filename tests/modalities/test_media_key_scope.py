"""A key's allowed_models and rpm_limit apply to every media surface: embeddings, images,
transcription, speech and video are refused (403, 429) before anything is held or called."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from farebox.sim import media_gen

from media_support import sdk
from support import NANOS, Gateway


def wav_1s() -> bytes:
    return media_gen.wav(1.0, "hello")


def key_with(gw: Gateway, **limits: Any) -> tuple[str, str]:
    credit_id, _ = gw.create_account(5)
    with gw.client() as c:
        r = c.post("/keys", json={"name": "scoped", **limits}, headers={"x-credit-id": credit_id})
        assert r.status_code == 201, r.text
        return credit_id, r.json()["data"]["api_key"]


def attempts(c: httpx.Client, key: str) -> dict[str, httpx.Response]:
    auth = {"Authorization": f"Bearer {key}"}
    return {
        "embeddings": c.post(
            "/v1/embeddings",
            json={"model": "text-embedding-3-small", "input": "hello"},
            headers=auth,
        ),
        "images": c.post(
            "/v1/images/generations",
            json={"model": "sim-image", "prompt": "a lighthouse", "quality": "low"},
            headers=auth,
        ),
        "transcription": c.post(
            "/v1/audio/transcriptions",
            data={"model": "nova-3"},
            files={"file": ("a.wav", wav_1s(), "audio/wav")},
            headers=auth,
        ),
        "video": c.post(
            "/v1/videos",
            json={"model": "kling-2.1-pro", "prompt": "waves", "duration": "5"},
            headers=auth,
        ),
    }


def test_models_outside_the_scope_are_refused_on_every_media_surface(media_gw: Gateway) -> None:
    credit_id, key = key_with(media_gw, allowed_models=["tts-1"])
    before = media_gw.nanos(credit_id)
    with media_gw.client() as c:
        for surface, r in attempts(c, key).items():
            assert r.status_code == 403, (surface, r.text)
            assert r.json()["error"]["code"] == "model_not_allowed", surface
    assert media_gw.nanos(credit_id) == before
    speech = sdk(media_gw, key).audio.speech.with_raw_response.create(
        model="tts-1", voice="alloy", input="Hello there"
    )
    assert speech.status_code == 200
    with media_gw.client() as c:
        r = c.post(
            "/v1/audio/speech",
            json={"model": "eleven_turbo_v2_5", "input": "Hi"},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert r.status_code == 403


def test_rpm_limit_applies_to_media_requests(media_gw: Gateway) -> None:
    credit_id, key = key_with(media_gw, rpm_limit=1)
    with media_gw.client() as c:
        auth = {"Authorization": f"Bearer {key}"}
        body = {"model": "text-embedding-3-small", "input": "hello"}
        assert c.post("/v1/embeddings", json=body, headers=auth).status_code == 200
        before = media_gw.nanos(credit_id)
        r = c.post("/v1/embeddings", json=body, headers=auth)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["type"] == "rate_limit_error"
        r = c.post(
            "/v1/images/generations",
            json={"model": "sim-image", "prompt": "a lighthouse", "quality": "low"},
            headers=auth,
        )
        assert r.status_code == 429
    assert media_gw.nanos(credit_id) == before


@contextmanager
def counting_image_host() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that serves a PNG and records every path asked for."""
    hits: list[str] = []
    png = media_gen.image("a counting host", "256x256")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("content-type", "image/png")
            self.send_header("content-length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_a_refused_key_makes_no_outbound_fetch_of_its_image_url(media_gw: Gateway) -> None:
    """Scope and rate limits are checked before a customer's image_url is fetched: a key that
    may not use the model (or is past its limit) cannot make the gateway fetch URLs for it."""
    credit_id, scoped = key_with(media_gw, allowed_models=["tts-1"])
    _, limited = key_with(media_gw, rpm_limit=1)
    with counting_image_host() as (host, hits), media_gw.client() as c:
        image = {"model": "nano-banana", "prompt": "x", "image_url": f"{host}/scoped.png"}
        video = {"model": "kling-i2v", "prompt": "x", "duration": "5"}
        video["image_url"] = f"{host}/scoped-video.png"
        for body, path in ((image, "/v1/images/generations"), (video, "/v1/videos")):
            r = c.post(path, json=body, headers={"Authorization": f"Bearer {scoped}"})
            assert r.status_code == 403, r.text
        limited_auth = {"Authorization": f"Bearer {limited}"}
        embed = {"model": "text-embedding-3-small", "input": "hello"}
        assert c.post("/v1/embeddings", json=embed, headers=limited_auth).status_code == 200
        late = {**image, "image_url": f"{host}/limited.png"}
        r = c.post("/v1/images/generations", json=late, headers=limited_auth)
        assert r.status_code == 429, r.text
        assert hits == []
    assert media_gw.nanos(credit_id) == (5 * NANOS, 0)
