"""S3-compatible media storage: SigV4 against AWS's published examples, and a gateway storing
generated images in a (loopback) S3-compatible service and serving them back."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from farebox.media.s3 import EMPTY_SHA256, sign_v4
from farebox.sim.server import SimServer

from media_support import media_catalog, media_env
from support import LoopThread, running_gateway

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
WHEN = datetime(2013, 5, 24, tzinfo=UTC)


def test_sigv4_get_object_example() -> None:
    headers = {
        "Range": "bytes=0-9",
        "x-amz-content-sha256": EMPTY_SHA256,
        "x-amz-date": "20130524T000000Z",
    }
    auth = sign_v4(
        "GET",
        "https://examplebucket.s3.amazonaws.com/test.txt",
        headers,
        EMPTY_SHA256,
        AWS_KEY,
        AWS_SECRET,
        "us-east-1",
        WHEN,
    )
    assert auth == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_sigv4_put_object_example() -> None:
    payload = hashlib.sha256(b"Welcome to Amazon S3.").hexdigest()
    headers = {
        "Date": "Fri, 24 May 2013 00:00:00 GMT",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": payload,
    }
    auth = sign_v4(
        "PUT",
        "https://examplebucket.s3.amazonaws.com/test$file.text",
        headers,
        payload,
        AWS_KEY,
        AWS_SECRET,
        "us-east-1",
        WHEN,
    )
    assert auth.endswith(
        "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    )


class FakeS3:
    """Path-style PUT/GET of objects, refusing requests whose SigV4 signature is wrong."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}

    def _check(self, request: web.Request, body: bytes) -> bool:
        digest = request.headers.get("x-amz-content-sha256", "")
        if digest != hashlib.sha256(body).hexdigest():
            return False
        signed = {k: request.headers[k] for k in request.headers if k.lower().startswith("x-amz-")}
        if "Content-Type" in request.headers and request.method == "PUT":
            signed["Content-Type"] = request.headers["Content-Type"]
        when = datetime.strptime(request.headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=UTC
        )
        expected = sign_v4(
            request.method,
            str(request.url),
            signed,
            digest,
            "test-key",
            "test-secret",
            "eu-west-1",
            when,
        )
        return request.headers.get("Authorization") == expected

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self._check(request, body):
            return web.Response(status=403, text="SignatureDoesNotMatch")
        path = request.path
        if request.method == "PUT":
            self.objects[path] = (body, request.headers.get("Content-Type", ""))
            return web.Response(status=200)
        if path not in self.objects:
            return web.Response(status=404, text="NoSuchKey")
        data, ctype = self.objects[path]
        return web.Response(body=data, content_type=ctype)


@pytest.fixture
def fake_s3() -> Iterator[tuple[FakeS3, str]]:
    fake = FakeS3()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    loop = LoopThread()
    runner = web.AppRunner(app)
    loop.run(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run(site.start())
    port = runner.addresses[0][1]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        loop.run(runner.cleanup())
        loop.stop()


def test_gateway_stores_media_in_s3(
    fake_s3: tuple[FakeS3, str], sim: SimServer, tmp_path: Path
) -> None:
    fake, endpoint = fake_s3
    env = {
        **media_env(tmp_path),
        "FAREBOX_MEDIA_S3_BUCKET": "media",
        "FAREBOX_MEDIA_S3_ENDPOINT": endpoint,
        "FAREBOX_MEDIA_S3_REGION": "eu-west-1",
        "FAREBOX_MEDIA_S3_PREFIX": "farebox/",
        "FAREBOX_MEDIA_S3_ACCESS_KEY_ID": "test-key",
        "FAREBOX_MEDIA_S3_SECRET_ACCESS_KEY": "test-secret",
    }
    url = f"sqlite:///{tmp_path / 'farebox.db'}"
    with running_gateway(url, media_catalog(sim.url), extra_env=env) as gw:
        _credit_id, key = gw.create_account(1)
        with gw.client() as c:
            r = c.post(
                "/v1/images/generations",
                json={"model": "sim-image", "prompt": "s3", "n": 2, "quality": "low"},
                headers={"Authorization": f"Bearer {key}"},
            )
        assert r.status_code == 200, r.text
        assert len(fake.objects) == 2
        assert all(p.startswith("/media/farebox/") for p in fake.objects)
        for item in r.json()["data"]:
            got = httpx.get(item["url"], timeout=30)
            assert got.status_code == 200
            assert got.content in {data for data, _ in fake.objects.values()}
        assert not (tmp_path / "media").exists()  # nothing went to the local folder
