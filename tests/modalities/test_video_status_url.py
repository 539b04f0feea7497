"""Video submit returns a signed `status_url` that polls the job with no API key (the only way a
payer with no account can follow it), valid 24 hours like media URLs; a tampered, foreign or
expired signature is a 403, and so is a malformed one (never a 500, for media URLs too)."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from media_support import spent
from support import NANOS, Gateway


def submit(gw: Gateway, key: str) -> dict[str, object]:
    with gw.client() as c:
        r = c.post(
            "/v1/videos",
            json={"model": "kling-2.1-pro", "prompt": "a lighthouse"},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert r.status_code == 202, r.text
    return dict(r.json())


def test_status_url_polls_without_auth_until_done(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    job = submit(media_gw, key)
    status_url = str(job["status_url"])
    parts = urlsplit(status_url)
    assert status_url.startswith(f"{media_gw.url}/v1/videos/{job['id']}?")
    assert set(parse_qs(parts.query)) == {"sig", "exp"}
    exp = int(parse_qs(parts.query)["exp"][0])
    assert 24 * 3600 - 60 < exp - time.time() <= 24 * 3600
    codes = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = httpx.get(status_url, timeout=30)  # no Authorization, no api-key
        codes.append(r.status_code)
        if r.status_code == 200:
            break
        assert r.status_code == 202, r.text
        assert r.json()["status"] in ("pending", "processing")
        time.sleep(0.1)
    # 202 while it runs (none at all if the job is done by the first poll, as under load)
    assert codes[-1] == 200 and set(codes[:-1]) <= {202}
    done = r.json()
    assert done["status"] == "completed" and done["cost"] == 0.25
    assert r.headers["x-farebox-cost"] == "0.25"
    assert httpx.get(done["data"]["url"], timeout=30).status_code == 200
    with media_gw.client() as c:
        keyed = c.get(f"/v1/videos/{job['id']}", headers={"Authorization": f"Bearer {key}"})
    # the same job as the keyed call sees it (the media URL is signed anew on each read, so its
    # `exp` may differ by the second between the two calls)
    keyed_body = keyed.json()
    assert keyed_body.pop("data")["url"].split("?")[0] == done.pop("data")["url"].split("?")[0]
    assert keyed_body == done
    assert spent(media_gw, credit_id, NANOS) == 250_000_000


def _with(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    query = {k: v for k, v in query.items() if v != "-"}
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"


def _flip(text: str) -> str:
    return text[:-1] + ("A" if text[-1] != "A" else "B")


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("tampered sig", "not valid"),
        ("later exp", "not valid"),
        ("other job", "not valid"),
        ("media sig", "not valid"),
        ("expired", "expired"),
        ("no sig", "missing"),
        ("non-ascii sig", "not valid"),
        ("long sig", "not valid"),
        ("huge exp", "not valid"),
        ("non-ascii digit exp", "not valid"),
        ("negative exp", "not valid"),
    ],
)
def test_bad_status_urls_are_403(media_gw: Gateway, how: str, says: str) -> None:
    _credit_id, key = media_gw.create_account(1)
    job = submit(media_gw, key)
    url = str(job["status_url"])
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    videos = media_gw.services.media.videos
    if how == "tampered sig":
        url = _with(url, sig=_flip(query["sig"]))
    elif how == "later exp":
        url = _with(url, exp=str(int(query["exp"]) + 3600))
    elif how == "other job":
        other = submit(media_gw, key)
        url = _with(url.replace(str(job["id"]), str(other["id"])))
    elif how == "media sig":  # a media URL's signature for the same id opens no status URL
        media_path = media_gw.services.media.media.signer.path(str(job["id"]), 0)
        media_query = {k: v[0] for k, v in parse_qs(urlsplit(media_path).query).items()}
        url = _with(url, **media_query)
    elif how == "expired":
        url = media_gw.url + videos.status.path(str(job["id"]), now=time.time() - 2 * 86400)
    elif how == "no sig":
        url = _with(url, sig="-")
    elif how == "non-ascii sig":
        url = _with(url, sig="é" * 43)
    elif how == "long sig":
        url = _with(url, sig="A" * 10_000)
    elif how == "huge exp":
        url = _with(url, exp="9" * 5000)
    elif how == "non-ascii digit exp":
        url = _with(url, exp="²٣")
    elif how == "negative exp":
        url = _with(url, exp="-5")
    r = httpx.get(url, timeout=30)
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["code"] == "forbidden" and says in error["message"]


def test_no_key_and_no_signature_is_401(media_gw: Gateway) -> None:
    _credit_id, key = media_gw.create_account(1)
    job = submit(media_gw, key)
    r = httpx.get(f"{media_gw.url}/v1/videos/{job['id']}", timeout=30)
    assert r.status_code == 401, r.text


@pytest.mark.parametrize(
    ("sig", "exp"),
    [("é" * 43, "99999999999"), ("A" * 43, "9" * 5000), ("A" * 43, "²"), ("A" * 10_000, "1")],
)
def test_malformed_media_signatures_are_403_not_500(media_gw: Gateway, sig: str, exp: str) -> None:
    query = urlencode({"sig": sig, "exp": exp})
    r = httpx.get(f"{media_gw.url}/v1/media/gen_doesnotmatter/0?{query}", timeout=30)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"
