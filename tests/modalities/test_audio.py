"""Transcription and speech through the official SDK: every response format, streamed audio
that decodes, prices per minute and per 1K characters, and every bad input refused for free."""

from __future__ import annotations

import io
import socket

import av
import httpx
import orjson
import pytest

from farebox.providers.deepgram import char_count, prompt_params
from farebox.sim import media_gen

from media_support import cost_nanos, query_rows, sdk, spent
from support import NANOS, Gateway

PER_MINUTE = 600_000_000  # $0.6


def wav_3s() -> bytes:
    return media_gen.wav(3.0, "hello")


def decoded_seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as box:
        frames = list(box.decode(audio=0))
    return sum(f.samples for f in frames) / frames[0].sample_rate


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt", "verbose_json"])
def test_transcription_formats(media_gw: Gateway, fmt: str) -> None:
    credit_id, key = media_gw.create_account(1)
    raw = sdk(media_gw, key).audio.transcriptions.with_raw_response.create(
        model="nova-3", file=("speech.wav", wav_3s(), "audio/wav"), response_format=fmt
    )
    cost = cost_nanos(float(raw.headers["x-farebox-cost"]))
    assert cost == 30_000_000  # 3 s at $0.6 per minute
    text = raw.http_response.text
    if fmt == "json":
        body = orjson.loads(text)
        assert body["text"] and cost_nanos(body["cost"]) == cost
    elif fmt == "verbose_json":
        body = orjson.loads(text)
        assert body["duration"] == 3.0 and body["segments"] and body["words"]
        assert cost_nanos(body["cost"]) == cost
    elif fmt == "srt":
        assert text.startswith("1\n00:00:00,000 --> ")
    elif fmt == "vtt":
        assert text.startswith("WEBVTT\n\n00:00:00.000 --> ")
    else:
        assert text.strip() and "{" not in text
    assert spent(media_gw, credit_id, NANOS) == cost
    assert query_rows(media_gw, credit_id) == [("transcription", "nova-3", cost)]


def test_transcription_sdk_object_and_whisper_route(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    client = sdk(media_gw, key)
    mp3 = media_gen.encoded_audio(2.0, "mp3", "x")
    result = client.audio.transcriptions.create(
        model="whisper-1", file=("a.mp3", mp3, "audio/mpeg"), language="multi", prompt="names"
    )
    assert result.text
    seconds = decoded_seconds(mp3)
    expected = -(-round(seconds * 1000) * PER_MINUTE // 60_000)
    assert cost_nanos(result.model_extra["cost"]) == expected  # type: ignore[index]
    default = client.audio.transcriptions.create(
        model="nova-2", file=("b.webm", media_gen.encoded_audio(1.0, "opus"), "audio/webm")
    )
    assert default.text
    total = expected + cost_nanos(default.model_extra["cost"])  # type: ignore[index]
    assert spent(media_gw, credit_id, NANOS) == total


def test_settles_on_the_duration_the_upstream_reports(media_gw: Gateway) -> None:
    """3 s decoded and held; the upstream bills 1 s: the customer pays for 1 s."""
    credit_id, key = media_gw.create_account(1)
    raw = sdk(media_gw, key).audio.transcriptions.with_raw_response.create(
        model="nova-3-reports-1s", file=("a.wav", wav_3s(), "audio/wav"), response_format="json"
    )
    assert raw.headers["x-farebox-cost"] == "0.01"  # 1 s at $0.6 per minute
    assert spent(media_gw, credit_id, NANOS) == 10_000_000


def test_audio_models_list_needs_no_auth(media_gw: Gateway) -> None:
    with media_gw.client() as c:
        data = c.get("/v1/audio/models").json()["data"]
    by_id = {m["id"]: m for m in data}
    assert by_id["nova-3"]["price_per_minute_usd"] == 0.6
    assert {"nova-3", "nova-2", "whisper-1"} <= set(by_id)


def test_transcription_bad_input_is_free(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    with media_gw.client() as c:
        url = "/v1/audio/transcriptions"

        def send(**kw: object) -> httpx.Response:
            return c.post(url, headers=auth(key), **kw)  # type: ignore[arg-type]

        assert send(json={"model": "nova-3"}).status_code == 415
        missing = send(data={"model": "nova-3"}, files={"other": ("a.wav", wav_3s())})
        assert missing.status_code == 400 and missing.json()["error"]["param"] == "file"
        garbage = send(data={"model": "nova-3"}, files={"file": ("a.mp3", b"\x00" * 5000)})
        assert garbage.status_code == 400 and "decoded" in garbage.json()["error"]["message"]
        text_file = send(data={"model": "nova-3"}, files={"file": ("a.txt", b"hello")})
        assert text_file.status_code == 400
        bad_format = send(
            data={"model": "nova-3", "response_format": "xml"}, files={"file": ("a.wav", wav_3s())}
        )
        assert bad_format.json()["error"]["param"] == "response_format"
        wrong_model = send(data={"model": "tts-1"}, files={"file": ("a.wav", wav_3s())})
        assert wrong_model.status_code == 400
        failing = send(data={"model": "failing-stt"}, files={"file": ("a.wav", wav_3s())})
        assert failing.status_code in (502, 503)
    assert spent(media_gw, credit_id, NANOS) == 0


def test_transcription_over_25mb_is_refused_while_streaming(media_gw: Gateway) -> None:
    """A chunked upload that passes 25 MB and then stalls gets its 413 at once: the gateway
    counts while the body streams in, it does not wait for (or buffer) the whole upload."""
    credit_id, key = media_gw.create_account(1)
    host, port = media_gw.url.removeprefix("http://").split(":")
    head = (
        "POST /v1/audio/transcriptions HTTP/1.1\r\n"
        f"Host: {host}\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    preamble = (
        b'--xyz\r\nContent-Disposition: form-data; name="model"\r\n\r\nnova-3\r\n'
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n"
    )

    def chunk(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"

    with socket.create_connection((host, int(port)), timeout=20) as conn:
        conn.sendall(head + chunk(preamble))
        block = b"\0" * (1024 * 1024)
        try:
            for _ in range(27):  # 27 MB of file, then the client stalls (never ends the body)
                conn.sendall(chunk(block))
        except OSError:
            pass  # the gateway may close the connection as soon as it has answered
        reply = conn.recv(65536).decode(errors="replace")
    assert reply.startswith("HTTP/1.1 413"), reply[:200]
    assert spent(media_gw, credit_id, NANOS) == 0


def test_speech_deepgram_streams_mp3(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    text = "Hello, welcome to farebox! " * 4
    with sdk(media_gw, key).audio.speech.with_streaming_response.create(
        model="deepgram_aura_2", voice="aura-2-arcas-en", input=text
    ) as response:
        assert response.headers["content-type"] == "audio/mpeg"
        cost = cost_nanos(float(response.headers["x-farebox-cost"]))
        chunks = list(response.iter_bytes())
    audio = b"".join(chunks)
    assert decoded_seconds(audio) > 1.0
    assert cost == -(-len(text) * 30_000_000 // 1000)
    assert spent(media_gw, credit_id, NANOS) == cost
    assert query_rows(media_gw, credit_id) == [("speech", "deepgram_aura_2", cost)]


@pytest.mark.parametrize(
    ("model", "voice", "fmt"),
    [
        ("eleven_turbo_v2_5", "JBFqnCBsd6RMkjVDRZzb", "wav"),
        ("tts-1", "alloy", "opus"),
        ("aura-2-thalia-en", "aura-2-thalia-en", "flac"),
    ],
)
def test_speech_providers_and_formats(media_gw: Gateway, model: str, voice: str, fmt: str) -> None:
    credit_id, key = media_gw.create_account(1)
    response = sdk(media_gw, key).audio.speech.with_raw_response.create(
        model=model,
        voice=voice,  # type: ignore[arg-type]
        input="Testing one two three.",
        response_format=fmt,  # type: ignore[arg-type]
    )
    assert decoded_seconds(response.http_response.content) > 0.5
    cost = cost_nanos(float(response.headers["x-farebox-cost"]))
    assert cost > 0
    assert spent(media_gw, credit_id, NANOS) == cost


def test_speech_voice_from_model_alias(media_gw: Gateway) -> None:
    _credit_id, key = media_gw.create_account(1)
    with media_gw.client() as c:
        r = c.post(
            "/v1/audio/speech", json={"model": "aura-2-thalia-en", "input": "Hi"}, headers=auth(key)
        )
    assert r.status_code == 200 and decoded_seconds(r.content) > 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "deepgram_aura_2", "input": "x" * 2001}, "input"),
        ({"model": "eleven_turbo_v2_5", "input": "x" * 5001}, "input"),
        ({"model": "deepgram_aura_2", "input": "hi", "voice": "nobody"}, "voice"),
        ({"model": "deepgram_aura_2", "input": ""}, "input"),
        (
            {"model": "eleven_turbo_v2_5", "input": "hi", "response_format": "aac"},
            "response_format",
        ),
        ({"model": "deepgram_aura_2", "input": "hi", "speed": 2}, "speed"),
        ({"model": "nova-3", "input": "hi"}, "model"),
        ({"model": "tts-1", "input": "hi", "colour": "red"}, "colour"),
    ],
)
def test_speech_bad_input_is_free(media_gw: Gateway, body: dict[str, object], param: str) -> None:
    credit_id, key = media_gw.create_account(1)
    with media_gw.client() as c:
        r = c.post("/v1/audio/speech", json=body, headers=auth(key))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert spent(media_gw, credit_id, NANOS) == 0


def test_voices_list_needs_no_auth(media_gw: Gateway) -> None:
    with media_gw.client() as c:
        data = c.get("/v1/audio/voices").json()["data"]
    by_id = {v["id"]: v for v in data}
    assert by_id["aura-2-arcas-en"]["provider"] == "Deepgram"
    assert by_id["JBFqnCBsd6RMkjVDRZzb"]["provider"] == "ElevenLabs"
    assert by_id["alloy"]["model"] == "tts-1"
    assert by_id["aura-2-arcas-en"]["max_input_chars"] == 2000


@pytest.mark.parametrize(
    ("value", "expected"),
    [("42", 42), ("\u00b2", None), ("\u0663", None), ("9" * 13, None), ("", None), (None, None)],
)
def test_an_upstreams_character_count_is_ascii_digits(
    value: str | None, expected: int | None
) -> None:
    """isdigit() accepts "²", which int() refuses: a speech reply with such a count was a 500."""
    headers = {} if value is None else {"dg-char-count": value}
    assert char_count(headers, "dg-char-count") == expected


def test_a_transcription_prompt_reaches_deepgram_as_its_guidance() -> None:
    """OpenAI's `prompt` has no Deepgram twin: Nova-3 takes it as a keyterm, older models as
    keywords (each word once); an empty prompt sends nothing."""
    assert prompt_params("nova-3", "farebox nanodollar") == [("keyterm", "farebox nanodollar")]
    assert prompt_params("nova-2", "farebox farebox ledger") == [
        ("keywords", "farebox"),
        ("keywords", "ledger"),
    ]
    assert prompt_params("nova-3", "   ") == [] and prompt_params("nova-2", None) == []
    assert len(prompt_params("nova-2", " ".join(f"w{i}" for i in range(500)))) == 50
