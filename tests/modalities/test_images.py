"""Image generation and edits: SDK and PPQ parameters, signed media URLs, validation, SSRF."""

from __future__ import annotations

import io
import time

import httpx
import openai
import pytest
from PIL import Image

from media_support import cost_nanos, query_rows, sdk, spent
from support import NANOS, Gateway


def post(gw: Gateway, key: str, body: dict[str, object]) -> httpx.Response:
    with gw.client() as c:
        return c.post(
            "/v1/images/generations", json=body, headers={"Authorization": f"Bearer {key}"}
        )


def download(url: str) -> httpx.Response:
    return httpx.get(url, timeout=30)


def decode(data: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture


def png_bytes(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(out, format="PNG")
    return out.getvalue()


def test_sdk_generate_n2_high_quality(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(5)
    raw = sdk(media_gw, key).images.with_raw_response.generate(
        model="sim-image", prompt="a red fox", n=2, quality="high", size="1536x1024"
    )
    result = raw.parse()
    assert len(result.data) == 2
    for item in result.data:
        assert item.url is not None
        got = download(item.url)
        assert got.status_code == 200
        assert got.headers["content-type"] == "image/png"
        picture = decode(got.content)
        assert picture.format == "PNG" and picture.size == (256, 171)
    cost = cost_nanos(result.model_extra["cost"])  # type: ignore[index]
    assert cost == 2 * 170_000_000
    assert raw.headers["x-farebox-cost"] == "0.34"
    assert spent(media_gw, credit_id, 5 * NANOS) == cost
    assert query_rows(media_gw, credit_id) == [("image", "sim-image", cost)]


def test_ppq_parameters_on_a_queue_model(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(5)
    r = post(
        media_gw,
        key,
        {
            "model": "nano-banana",
            "prompt": "A futuristic cityscape at sunset",
            "num_images": 3,
            "aspect_ratio": "16:9",
            "resolution": "2K",
            "negative_prompt": "fog",
            "output_format": "webp",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"created", "model", "cost", "data"}
    assert body["model"] == "nano-banana"
    assert [d["content_type"] for d in body["data"]] == ["image/webp"] * 3
    for d in body["data"]:
        assert decode(download(d["url"]).content).format == "WEBP"
    assert cost_nanos(body["cost"]) == 3 * 80_000_000
    assert spent(media_gw, credit_id, 5 * NANOS) == cost_nanos(body["cost"])


def test_default_quality_prices_the_first_allowed_value(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    r = post(media_gw, key, {"model": "sim-image", "prompt": "x", "output_format": "jpeg"})
    assert r.status_code == 200, r.text
    assert cost_nanos(r.json()["cost"]) == 40_000_000  # medium
    assert decode(download(r.json()["data"][0]["url"]).content).format == "JPEG"
    assert spent(media_gw, credit_id, NANOS) == 40_000_000


def test_sdk_edit_returns_a_decodable_image(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    result = sdk(media_gw, key).images.edit(
        model="sim-image",
        image=("in.png", png_bytes(), "image/png"),
        prompt="make it blue",
        quality="low",
    )
    assert result.data is not None and result.data[0].url is not None
    picture = decode(download(result.data[0].url).content)
    assert picture.size == (32, 32)
    assert picture.getpixel((0, 0)) != (200, 30, 30)  # edited, not echoed
    cost = cost_nanos(result.model_extra["cost"])  # type: ignore[index]
    assert cost == 10_000_000
    assert spent(media_gw, credit_id, NANOS) == cost


def test_image_url_via_data_url_and_guarded_fetch(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    import base64

    data_url = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    first = post(media_gw, key, {"model": "nano-banana", "prompt": "x", "image_url": data_url})
    assert first.status_code == 200, first.text
    # 127.0.0.1 is allowed by this gateway's FAREBOX_FETCH_ALLOW_HOSTS: fetch our own media URL.
    own = first.json()["data"][0]["url"]
    second = post(media_gw, key, {"model": "nano-banana", "prompt": "y", "image_url": own})
    assert second.status_code == 200, second.text
    total = cost_nanos(first.json()["cost"]) + cost_nanos(second.json()["cost"])
    assert spent(media_gw, credit_id, NANOS) == total


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:9/x.png",  # resolves to loopback; only the literal 127.0.0.1 is allowed
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/x.png",
        "http://[::1]:9/x.png",
        "http://[::ffff:192.168.0.1]/x.png",
        # IPv6 forms of loopback that passed before issue 11: IPv4-compatible, 6to4,
        # IPv4-translated; then Teredo, local-use NAT64 and NAT64 to a private address.
        "http://[::127.0.0.1]:9/x.png",
        "http://[2002:7f00:1::]:9/x.png",
        "http://[::ffff:0:7f00:1]:9/x.png",
        "http://[2001::7f00:1]:9/x.png",
        "http://[64:ff9b:1::7f00:1]:9/x.png",
        "http://[64:ff9b::a00:1]:9/x.png",
        "file:///etc/passwd",
        "ftp://example.com/x.png",
    ],
)
def test_ssrf_guard_refuses_private_targets(media_gw: Gateway, url: str) -> None:
    credit_id, key = media_gw.create_account(1)
    r = post(media_gw, key, {"model": "nano-banana", "prompt": "x", "image_url": url})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "image_url"
    if url.startswith("http"):  # refused by the guard, not merely unreachable
        assert "non-public address" in error["message"], error
    assert spent(media_gw, credit_id, NANOS) == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://" + "a" * 300 + ".example/x.png",  # a 300-character label: a 500 before
        "http://" + ("abcdefghi." * 26) + "example/x.png",  # 260 characters in all
        "http://a..example/x.png",
        "http://example.com:99999/x.png",
        "http://[::1/x.png",
    ],
)
def test_malformed_image_url_host_is_a_clear_400(media_gw: Gateway, url: str) -> None:
    credit_id, key = media_gw.create_account(1)
    r = post(media_gw, key, {"model": "nano-banana", "prompt": "x", "image_url": url})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "image_url" and error["code"] == "url_refused", error
    assert len(error["message"]) < 300
    assert spent(media_gw, credit_id, NANOS) == 0


def test_image_url_that_is_not_an_image(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    url = media_gw.url + "/healthz"
    r = post(media_gw, key, {"model": "nano-banana", "prompt": "x", "image_url": url})
    assert r.status_code == 400 and "not an image" in r.json()["error"]["message"]
    assert spent(media_gw, credit_id, NANOS) == 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "sim-image", "prompt": "x", "n": 5}, "n"),
        ({"model": "sim-image", "prompt": "x", "num_images": 0}, "n"),
        ({"model": "sim-image", "prompt": "x", "quality": "ultra"}, "quality"),
        ({"model": "sim-image", "prompt": "x", "resolution": "2K"}, "resolution"),
        ({"model": "sim-image", "prompt": "x", "negative_prompt": "no"}, "negative_prompt"),
        ({"model": "sim-image", "prompt": "x", "size": "16:9"}, "size"),
        ({"model": "sim-image", "prompt": "x", "foo": 1}, "foo"),
        ({"model": "sim-image"}, "prompt"),
        ({"model": "failing-image", "prompt": "x", "image_url": "data:,"}, "image_url"),
        ({"model": "nano-banana", "prompt": "x", "n": 1, "num_images": 2}, "num_images"),
        ({"model": "openai/text-embedding-3-small", "prompt": "x"}, "model"),
        ({"model": "sim-image", "prompt": "x", "n": "\u00b2"}, "n"),  # isdigit() said yes: a 500
        ({"model": "sim-image", "prompt": "x", "n": "9" * 5000}, "n"),  # int() refused: a 500
        ({"model": "sim-image", "prompt": "x", "quality": "q" * 100_000}, "quality"),
    ],
)
def test_bad_input_is_400_and_free(media_gw: Gateway, body: dict[str, object], param: str) -> None:
    credit_id, key = media_gw.create_account(1)
    r = post(media_gw, key, body)
    assert r.status_code == 400, r.text[:500]
    assert len(r.content) <= 1024, r.text[:200]
    assert r.json()["error"]["param"] == param, r.text
    assert spent(media_gw, credit_id, NANOS) == 0


def test_failed_upstream_job_is_free(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    r = post(media_gw, key, {"model": "failing-image", "prompt": "x"})
    assert r.status_code == 502, r.text
    assert "Nothing was charged" in r.json()["error"]["message"]
    assert spent(media_gw, credit_id, NANOS) == 0


def test_insufficient_balance_is_402(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account("0.05")
    r = post(media_gw, key, {"model": "sim-image", "prompt": "x", "quality": "high"})
    assert r.status_code == 402
    assert spent(media_gw, credit_id, NANOS // 20) == 0


def test_edits_bad_uploads(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    auth = {"Authorization": f"Bearer {key}"}
    form = {"model": "sim-image", "prompt": "x"}
    with media_gw.client() as c:
        wrong_type = c.post("/v1/images/edits", json=form, headers=auth)
        assert wrong_type.status_code == 415
        missing = c.post("/v1/images/edits", data=form, files={"other": ("a", b"1")}, headers=auth)
        assert missing.status_code == 400 and missing.json()["error"]["param"] == "image"
        garbage = c.post(
            "/v1/images/edits", data=form, files={"image": ("a.png", b"nope")}, headers=auth
        )
        assert garbage.status_code == 400 and "not an image" in garbage.json()["error"]["message"]
        big = c.post(
            "/v1/images/edits",
            data=form,
            files={"image": ("big.png", b"\0" * (25 * 1024 * 1024 + 1))},
            headers=auth,
        )
        assert big.status_code == 413
        not_editable = c.post(
            "/v1/images/edits",
            data={"model": "failing-image", "prompt": "x"},
            files={"image": ("a.png", png_bytes())},
            headers=auth,
        )
        assert not_editable.status_code == 400
        for n in ("\u00b2", "9" * 5000):
            odd_n = c.post(
                "/v1/images/edits",
                data={**form, "n": n},
                files={"image": ("a.png", png_bytes())},
                headers=auth,
            )
            assert odd_n.status_code == 400 and odd_n.json()["error"]["param"] == "n", odd_n.text
    assert spent(media_gw, credit_id, NANOS) == 0


def test_media_url_signature_checks(media_gw: Gateway) -> None:
    _credit_id, key = media_gw.create_account(1)
    r = post(media_gw, key, {"model": "sim-image", "prompt": "sig", "n": 1, "quality": "low"})
    url = r.json()["data"][0]["url"]
    assert download(url).status_code == 200
    path, _, query = url.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    sig, exp = params["sig"], params["exp"]
    tampered = sig[:-2] + ("AA" if not sig.endswith("AA") else "BB")
    assert download(f"{path}?sig={tampered}&exp={exp}").status_code == 403
    assert download(f"{path}?sig={sig}&exp={int(exp) + 10}").status_code == 403
    assert download(path).status_code == 403
    wrong_n = path.rsplit("/", 1)[0] + "/1"
    assert download(f"{wrong_n}?sig={sig}&exp={exp}").status_code == 403
    gen_id = path.split("/")[-2]
    signer = media_gw.services.media.media.signer
    signed_missing = media_gw.url + signer.path(gen_id, 1)
    assert download(signed_missing).status_code == 404
    expired = media_gw.url + signer.path(gen_id, 0, now=time.time() - 2 * 86400)
    r = download(expired)
    assert r.status_code == 403 and "expired" in r.json()["error"]["message"]
    fresh = media_gw.url + signer.path(gen_id, 0)
    assert download(fresh).status_code == 200


def test_odd_media_urls_are_4xx(media_gw: Gateway) -> None:
    """isdigit() accepts "²" and int() refuses it; compare_digest refuses non-ASCII text; int()
    refuses 5,000 digits: each was a 500."""
    _credit_id, key = media_gw.create_account(1)
    r = post(media_gw, key, {"model": "sim-image", "prompt": "odd", "n": 1, "quality": "low"})
    path, _, query = r.json()["data"][0]["url"].partition("?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    sig, exp = params["sig"], params["exp"]
    folder = path.rsplit("/", 1)[0]
    cases = [
        (f"{folder}/%C2%B2?sig={sig}&exp={exp}", 404),
        (f"{folder}/{'9' * 5000}?sig={sig}&exp={exp}", 404),
        (f"{folder}/{'x' * 10_000}", 404),
        (f"{path}?sig=%C3%A9%C3%A9&exp={exp}", 403),
        (f"{path}?sig={sig[:-1]}%C3%A9&exp={exp}", 403),
        (f"{path}?sig={sig}&exp=%C2%B2", 403),
        (f"{path}?sig={sig}&exp={'9' * 5000}", 403),
        (f"{path}?sig={'x' * 10_000}&exp={exp}", 403),
    ]
    for url, status in cases:
        got = download(url)
        assert got.status_code == status, (url[:120], got.text[:300])
        assert len(got.content) <= 1024 and got.json()["error"]["message"]
    assert download(f"{path}?sig={sig}&exp={exp}").status_code == 200


def test_models_list_shows_unit_prices_and_parameters(media_gw: Gateway) -> None:
    with media_gw.client() as c:
        data = c.get("/v1/models", params={"type": "image,video"}).json()["data"]
    by_id = {m["id"]: m for m in data}
    banana = by_id["nano-banana"]
    assert banana["unit_pricing_usd"] == {"image": 0.04, "image:2K": 0.08}
    assert banana["parameters"]["resolution"] == ["1K", "2K"]
    assert banana["average_cost_usd"] == 0.04 and banana["prompts_per_usd"] == 25
    assert by_id["kling-i2v"]["required"] == ["prompt", "image_url"]
    assert "sim-image" in by_id and "nova-3" not in by_id
    # one image at the defaults (quality medium, not the cheapest, low at $0.01)
    assert by_id["sim-image"]["average_cost_usd"] == 0.04
    assert by_id["sim-image"]["prompts_per_usd"] == 25
    # sold per unit: no token context window to show
    for model in data:
        assert model["context_length"] is None and model["max_output_tokens"] is None, model["id"]


def test_models_retrieve_by_slashed_id_and_alias(media_gw: Gateway) -> None:
    """`client.models.retrieve` works for ids with a slash, and an alias names its model."""
    client = openai.OpenAI(api_key="unused", base_url=media_gw.url + "/v1", max_retries=0)
    model = client.models.retrieve("openai/text-embedding-3-small")
    assert model.id == "openai/text-embedding-3-small" and model.object == "model"
    assert model.model_extra["context_length"] == 8191  # type: ignore[index]
    assert client.models.retrieve("text-embedding-3-small").id == "openai/text-embedding-3-small"
    listed = {m.id: m for m in client.models.list()}
    assert client.models.retrieve("sim-image").model_dump() == listed["sim-image"].model_dump()
