"""Parity with PayPerQ's docs: every model id the reference names (but `private/*`, which the
private models bring) resolves in the shipped catalog and answers through the gateway with the
shipped catalog routed to `farebox sim`, charged exactly. The ids are read from the reference
file itself, so a model added to the docs fails here until the catalog has it.

The reference is kept beside this test (reference/ppq-api-docs.txt, a copy of the team's
shared/reference/ppq-api-docs.txt) so the test runs on a clone alone; where the shared copy is
there too, a test checks that the two still match."""

from __future__ import annotations

import base64
import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from farebox.catalog.loader import DEFAULT_CATALOG_PATH, load_catalog
from farebox.catalog.model import UNIT_PRICED_TYPES, CatalogModel
from farebox.demo import build_demo_catalog
from farebox.sim import media_gen
from farebox.sim.server import SimServer

from support import NANOS, Gateway, database_url, running_gateway

REFERENCE = Path(__file__).resolve().parent / "reference" / "ppq-api-docs.txt"
SHARED_REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "ppq-api-docs.txt"
ID = r"[a-z][a-z0-9_]*(?:[./-][a-z0-9_]+)*"


def reference_text() -> str:
    return REFERENCE.read_text()


def test_the_kept_copy_matches_the_shared_reference() -> None:
    if not SHARED_REFERENCE.exists():
        pytest.skip(f"no shared reference at {SHARED_REFERENCE} to compare with (a clone alone)")
    assert REFERENCE.read_bytes() == SHARED_REFERENCE.read_bytes(), (
        "PayPerQ's docs changed: copy shared/reference/ppq-api-docs.txt to "
        "tests/catalog/reference/ and let the parity tests say what the catalog now lacks"
    )


def reference_model_ids(text: str) -> set[str]:
    """Model ids as the reference writes them:

    - in examples: `"model": "x"` (JSON) and `model="x"` (SDKs);
    - in the parameter tables: the quoted values of a "Model to use: ..." sentence;
    - in markdown tables whose first column is the id (`openai/text-embedding-3-small | OpenAI`);
    - in model lists, where the page's text runs an id into its display name and the name into
      " — " (`veo3Google Veo 3 (Quality) — 8s`). A list glues each id onto the end of the entry
      before it (`… — 8sveo3-fast…`, `… requires image_urlkling-…`), so a duration or a
      parameter name glued to an id is split off first. A list id holds a digit or a hyphen.
    """
    ids = set(re.findall(r'"model"\s*:\s*"([^"]+)"', text))
    ids |= set(re.findall(r'\bmodel="([^"]+)"', text))
    for sentence in re.findall(r"Model to use:(.*?)(?:response_format|voiceVoice)", text, re.S):
        ids |= set(re.findall(r'"([^"]+)"', sentence))
    ids |= set(re.findall(rf"^({ID}) \| [A-Z]", text, re.MULTILINE))
    unglued = re.sub(r"(\d+s|image_url)(?=[a-z])", r"\1 ", text)
    unglued = re.sub(r"\.(?=[a-z])", ". ", unglued)
    listed = re.findall(rf"(?<![A-Za-z0-9_./-])({ID})(?=[A-Z][^—\n]{{0,60}}? [—-] )", unglued)
    ids |= {i for i in listed if re.search(r"[\d-]", i)}
    return {i for i in ids if "private/" not in i}  # the private models issue brings those


def reference_voices(text: str) -> set[str]:
    """The Deepgram Aura voices the speech section lists (`aura-2-arcas-enArcas - …`)."""
    return set(re.findall(r"(aura-2-[a-z]+-en)(?=[A-Z\"])", text))


REFERENCE_IDS = sorted(reference_model_ids(reference_text())) if REFERENCE.exists() else []
DESCRIBED_IDS = ["recraft-crisp-upscale", "bria-background-remove"]
"""The upscaler and the background-removal model the reference describes without naming."""


def test_the_reference_is_read_as_expected() -> None:
    """The extraction finds the lists the issue names (so a broken pattern cannot pass quietly)."""
    ids = reference_model_ids(reference_text())
    assert {"veo3", "veo3-fast", "veo3-i2v", "runway-gen4", "runway-aleph"} <= ids
    assert {"kling-2.1-standard", "kling-2.1-master-i2v", "kling-2.5-turbo-i2v"} <= ids
    assert {"nova-2", "nova-3", "eleven_turbo_v2_5", "deepgram_aura_2", "aura-2-arcas-en"} <= ids
    assert {"openai/text-embedding-3-small", "openai/text-embedding-3-large"} <= ids
    assert {"gpt-image-1", "nano-banana-2", "claude-sonnet-4.6", "claude-sonnet-4-5"} <= ids
    assert not any(i.startswith("private/") for i in ids)
    assert len(reference_voices(reference_text())) == 6


def test_every_model_the_reference_names_resolves_in_the_shipped_catalog() -> None:
    catalog = load_catalog(None, env={})
    missing = []
    for model_id in REFERENCE_IDS:
        try:
            catalog.resolve(model_id)
        except Exception as exc:  # UnknownModel or UnpricedModel: both mean "not served"
            missing.append(f"{model_id}: {exc}")
    assert not missing, "\n".join(missing)


def test_every_unit_price_names_its_public_source() -> None:
    """Media models are sold per unit at prices read from a public list, named in the file."""
    models = json.loads(DEFAULT_CATALOG_PATH.read_text())["models"]
    unnamed = [
        model_id
        for model_id, entry in models.items()
        if entry["type"] in UNIT_PRICED_TYPES and not entry.get("price_source", "").strip()
    ]
    assert not unnamed, f"unit-priced models without price_source: {unnamed}"


@pytest.fixture(scope="module")
def shipped_on_sim(sim: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The shipped catalog with every route sent to the simulator (what --demo serves)."""
    tmp = tmp_path_factory.mktemp("parity")
    env = {
        "FAREBOX_MEDIA_DIR": str(tmp / "media"),
        "FAREBOX_FETCH_ALLOW_HOSTS": "127.0.0.1",
        "FAREBOX_VIDEO_POLL_S": "0.1",
    }
    with (
        database_url("sqlite", tmp) as url,
        running_gateway(url, build_demo_catalog(sim.url), extra_env=env) as gw,
    ):
        yield gw


def png_data_url() -> str:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (20, 120, 200)).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def use(gw: Gateway, key: str, model: CatalogModel, asked: str) -> tuple[float, httpx.Headers]:
    """One real request for `asked` (an id or alias of `model`) by its type: (cost, headers)."""
    client = openai.OpenAI(api_key=key, base_url=gw.url + "/v1", max_retries=0)
    if model.type == "chat":
        raw = client.chat.completions.with_raw_response.create(
            model=asked, messages=[{"role": "user", "content": "hello"}], max_tokens=20
        )
        reply = raw.parse()
        assert reply.model == model.id and reply.choices[0].message.content
        return float(reply.usage.model_extra["cost"]), raw.headers  # type: ignore[union-attr,index]
    if model.type == "embedding":
        raw_e = client.embeddings.with_raw_response.create(model=asked, input="hi", dimensions=256)
        vectors = raw_e.parse()
        assert len(vectors.data[0].embedding) == 256  # `dimensions`, as PPQ documents
        return float(vectors.model_extra["cost"]), raw_e.headers  # type: ignore[index]
    if model.type == "audio":
        raw_t = client.audio.transcriptions.with_raw_response.create(
            model=asked,
            file=("talk.wav", media_gen.wav(2.0, "hello"), "audio/wav"),
            prompt="farebox",
        )
        assert "farebox" in raw_t.parse().text  # the prompt reached Deepgram
        return float(raw_t.headers["x-farebox-cost"]), raw_t.headers
    if model.type == "speech":
        raw_s = client.audio.speech.with_raw_response.create(
            model=asked,
            voice=model.voices[0].id,  # type: ignore[arg-type]
            input="Hello from the parity test.",
        )
        assert len(raw_s.content) > 100
        return 0.0, raw_s.headers  # streamed: the cost is in the history row
    body: dict[str, Any] = {"model": asked}
    if "prompt" in model.required:
        body["prompt"] = "a lighthouse at dusk"
    if "image_url" in model.required:
        body["image_url"] = png_data_url()
    if "video_url" in model.required:
        body["video_url"] = "https://videos.example/source.mp4"  # passed on, never fetched
    auth = {"Authorization": f"Bearer {key}"}
    with gw.client() as c:
        if model.type == "image":
            r = c.post("/v1/images/generations", json=body, headers=auth)
            assert r.status_code == 200, r.text
            assert httpx.get(r.json()["data"][0]["url"], timeout=30).status_code == 200
            return float(r.json()["cost"]), r.headers
        r = c.post("/v1/videos", json=body, headers=auth)
        assert r.status_code in (200, 201, 202), r.text
        job = r.json()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = c.get(f"/v1/videos/{job['id']}", headers=auth)
            if done.status_code == 200:
                break
            time.sleep(0.1)
        assert done.status_code == 200 and done.json()["status"] == "completed", done.text
        return float(done.json()["cost"]), done.headers


@pytest.mark.parametrize("asked", REFERENCE_IDS + DESCRIBED_IDS)
def test_every_model_the_reference_names_works_against_the_sim(
    shipped_on_sim: Gateway, asked: str
) -> None:
    gw = shipped_on_sim
    model = gw.services.catalog.resolve(asked)
    credit_id, key = gw.create_account(20)
    cost, _headers = use(gw, key, model, asked)
    balance, reserved = gw.nanos(credit_id)
    spent = 20 * NANOS - balance
    assert reserved == 0 and spent > 0
    assert gw.history_total_nanos(credit_id) == spent
    if cost:
        assert round(cost * NANOS) == spent
    assert gw.check().ok


def test_the_referenced_aura_voices_are_offered(shipped_on_sim: Gateway) -> None:
    with shipped_on_sim.client() as c:
        listed = {v["id"] for v in c.get("/v1/audio/voices").json()["data"]}
    assert reference_voices(reference_text()) <= listed


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("video_url", "http://videos.example/a.mp4"),  # not https
        ("video_url", "file:///etc/passwd"),
        ("video_url", "https://videos.example/" + "a" * 3000),  # too long
        ("video_url", 42),
        ("prompt", None),  # Aleph needs a prompt too
    ],
)
def test_bad_video_url_is_a_400_and_moves_no_money(
    shipped_on_sim: Gateway, field: str, value: object
) -> None:
    gw = shipped_on_sim
    credit_id, key = gw.create_account(1)
    body: dict[str, object] = {
        "model": "runway-aleph",
        "prompt": "make it snow",
        "video_url": "https://videos.example/a.mp4",
    }
    body[field] = value
    with gw.client() as c:
        r = c.post("/v1/videos", json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == field
    assert gw.nanos(credit_id) == (NANOS, 0)


def test_an_overlong_transcription_prompt_is_a_400_and_moves_no_money(
    shipped_on_sim: Gateway,
) -> None:
    credit_id, key = shipped_on_sim.create_account(1)
    with shipped_on_sim.client() as c:
        r = c.post(
            "/v1/audio/transcriptions",
            data={"model": "nova-3", "prompt": "x" * 2001},
            files={"file": ("a.wav", media_gen.wav(1.0, "hi"), "audio/wav")},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt", r.text
    assert shipped_on_sim.nanos(credit_id) == (NANOS, 0)
