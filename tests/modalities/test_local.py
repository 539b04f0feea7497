"""The keyless local models (the `local` extra): real embeddings, espeak-ng speech and
pocketsphinx transcription, served and billed like any model. Skipped without the extra."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from farebox.local import availability
from farebox.modalities.demo import media_demo_catalog
from farebox.sim.server import SimServer

from media_support import cost_nanos, media_env, query_rows, sdk, spent
from support import NANOS, Gateway, running_gateway

INSTALLED = (
    availability.has_embeddings() and availability.has_transcription() and availability.has_speech()
)
MISSING = "the local extra (pip install 'farebox[local]') and espeak-ng are not installed"
if not INSTALLED and os.environ.get("CI") == "true":
    pytest.fail(f"{MISSING}; .ci/run installs them", pytrace=False)
pytestmark = pytest.mark.skipif(not INSTALLED, reason=MISSING)


@pytest.fixture(scope="module")
def local_gw(sim: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("local")
    url = f"sqlite:///{tmp / 'farebox.db'}"
    with running_gateway(url, media_demo_catalog(sim.url), extra_env=media_env(tmp)) as gw:
        yield gw


def test_local_embedding_is_a_real_384_vector(local_gw: Gateway) -> None:
    credit_id, key = local_gw.create_account(1)
    client = sdk(local_gw, key)
    result = client.embeddings.create(
        model="local/all-minilm-l6-v2",
        input=["A cat sits on the mat.", "A kitten rests on a rug.", "Stock prices fell."],
        encoding_format="float",
    )
    vectors = [d.embedding for d in result.data]
    assert [len(v) for v in vectors] == [384, 384, 384]

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2]) + 0.2  # real semantics
    cost = cost_nanos(result.model_extra["cost"])  # type: ignore[index]
    assert cost == result.usage.prompt_tokens * 10  # $0.01 per 1M tokens
    assert spent(local_gw, credit_id, NANOS) == cost


def test_espeak_wav_transcribes_to_the_spoken_words(local_gw: Gateway, tmp_path: Path) -> None:
    credit_id, key = local_gw.create_account(1)
    client = sdk(local_gw, key)
    speech = client.audio.speech.with_raw_response.create(
        model="local/espeak-ng",
        voice="en-us+m3",  # type: ignore[arg-type]
        input="one two three four five",
        response_format="wav",
    )
    wav = speech.http_response.content
    with av.open(io.BytesIO(wav)) as box:
        assert box.format.name == "wav"
    assert speech.headers["x-farebox-cost"] == "0"  # a free model: every price set to 0
    result = client.audio.transcriptions.create(
        model="local/pocketsphinx-en", file=("spoken.wav", wav, "audio/wav")
    )
    assert result.text.split() == ["one", "two", "three", "four", "five"]
    cost = cost_nanos(result.model_extra["cost"])  # type: ignore[index]
    assert cost > 0
    assert spent(local_gw, credit_id, NANOS) == cost
    assert [row[0] for row in query_rows(local_gw, credit_id)] == ["speech", "transcription"]
