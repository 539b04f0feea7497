"""Harness for the private-model tests: a simulated enclave, a gateway routed to it, and the
private proxy, each on loopback in its own thread."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
from aiohttp import web

from farebox.catalog.loader import catalog_from_dict
from farebox.catalog.model import Catalog
from farebox.private.ehbp import FrameReader, KeyConfig
from farebox.private.ehbp_seal import ServerKey, seal_request
from farebox.private.policy import Policy
from farebox.private.proxy import PrivateProxy, create_proxy_app
from farebox.sim.config import SimConfig
from farebox.sim.enclave import RunningEnclave, start_enclave

from support import TEST_PRICE, LoopThread, free_port, served

IN_NANOS = 1_000  # TEST_PRICE: $1 per 1M input tokens
OUT_NANOS = 2_000  # $2 per 1M output tokens
PRIVATE_MODEL = "private/test-enclave"
VISION_MODEL = "private/test-vision"
ENCLAVE_MODEL = "test-enclave"
PUBLIC_MODEL = "public-model"


def private_catalog(enclave_url: str, extra_providers: dict[str, Any] | None = None) -> Catalog:
    base = {
        "provider": "Test",
        "type": "chat",
        "context": 100_000,
        "max_output": 4096,
        "date_added": "2026-01-01",
        "price": TEST_PRICE,
    }
    return catalog_from_dict(
        {
            "providers": {
                "enclave": {"kind": "ehbp", "base_url": enclave_url},
                "plain": {"kind": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1"},
                **(extra_providers or {}),
            },
            "models": {
                PUBLIC_MODEL: {**base, "routes": [{"provider": "plain", "model": "m"}]},
                PRIVATE_MODEL: {
                    **base,
                    "routes": [{"provider": "enclave", "model": ENCLAVE_MODEL}],
                },
                VISION_MODEL: {
                    **base,
                    "image_tokens": 1500,
                    "routes": [{"provider": "enclave", "model": "test-vision"}],
                },
                **{
                    f"private/{name}": {
                        **base,
                        "routes": [{"provider": name, "model": ENCLAVE_MODEL}],
                    }
                    for name in (extra_providers or {})
                },
            },
        },
        env={},
    )


@contextmanager
def running_enclave(config: SimConfig | None = None, **kwargs: Any) -> Iterator[RunningEnclave]:
    loop = LoopThread()
    enclave = loop.run(start_enclave(config or SimConfig(seed=1), **kwargs))
    try:
        yield enclave
    finally:
        loop.run(enclave.close())
        loop.stop()


@dataclass
class Proxy:
    url: str
    proxy: PrivateProxy

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(self.url + "/health", timeout=10).json())


@contextmanager
def running_proxy(gateway_url: str, api_key: str, policy: Policy) -> Iterator[Proxy]:
    proxy = PrivateProxy(gateway_url, api_key, policy)
    with served(create_proxy_app(proxy), lifespan="on") as (url, _loop):
        yield Proxy(url, proxy)


def policy_file(tmp: Path, raw: bytes) -> Policy:
    path = tmp / "policy.json"
    path.write_bytes(raw)
    return Policy.load(path)


@dataclass
class SealedReply:
    """A sealed exchange with the gateway, seen by the client: what it could open."""

    status: int
    headers: httpx.Headers
    plaintext: bytes  # opened (or, with no response nonce, the body as sent)
    frames: int  # complete response frames received
    request_plaintext: int  # bytes sealed into the request
    cut: bool = False  # the response ended before its end

    def json(self) -> Any:
        return orjson.loads(self.plaintext)

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.plaintext.decode().splitlines():
            if line.startswith("data: ") and line != "data: [DONE]":
                out.append(orjson.loads(line[6:]))
        return out


def gateway_key_config(url: str) -> KeyConfig:
    r = httpx.get(url + "/.well-known/hpke-keys", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "application/ohttp-keys"
    return KeyConfig.parse(r.content)


def sealed_chat(
    url: str,
    api_key: str,
    body: dict[str, Any],
    model: str = PRIVATE_MODEL,
    *,
    keys: KeyConfig | None = None,
    stop_after_frames: int | None = None,
    headers: dict[str, str] | None = None,
) -> SealedReply:
    """POST a sealed chat request as any EHBP client would, and open what comes back."""
    plaintext = orjson.dumps(body)
    sealed = seal_request(keys or gateway_key_config(url), plaintext)
    sent = {
        "Authorization": f"Bearer {api_key}",
        "X-Private-Model": model,
        "Ehbp-Encapsulated-Key": sealed.enc_hex,
        "Content-Type": "application/json",
        **(headers or {}),
    }
    reader = FrameReader()
    out: list[bytes] = []
    cut = False
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST", url + "/private/v1/chat/completions", content=sealed.body, headers=sent
        ) as r,
    ):
        nonce = r.headers.get("ehbp-response-nonce")
        opener = sealed.opener(nonce) if nonce else None
        try:
            for chunk in r.iter_raw():
                if opener is not None:
                    reader.feed(chunk)
                out.append(opener.feed(chunk) if opener is not None else chunk)
                if stop_after_frames is not None and reader.frames >= stop_after_frames:
                    break
        except httpx.RemoteProtocolError:
            cut = True
        return SealedReply(
            r.status_code, r.headers, b"".join(out), reader.frames, len(plaintext), cut
        )


def chat_body(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": ENCLAVE_MODEL, "messages": [{"role": "user", "content": text}], **extra}


@contextmanager
def running_interposer(target: str, alter: str) -> Iterator[str]:
    """An operator's box between the gateway and the enclave that passes everything on but
    alters one thing: `tamper` changes the signed report, `swap` serves another HPKE key."""
    swapped = ServerKey.generate().config.encode()

    async def forward(request: web.Request) -> web.Response:
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                target + request.path_qs,
                data=await request.read(),
                headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            ) as r,
        ):
            body = await r.read()
            content_type = r.headers.get("Content-Type", "application/octet-stream")
        if alter == "tamper" and request.path == "/attestation":
            data = orjson.loads(body)
            report = orjson.loads(base64.b64decode(data["report"]))
            report["measurement"] = "11" * 32
            data["report"] = base64.b64encode(orjson.dumps(report)).decode()
            body = orjson.dumps(data)
        if alter == "swap" and request.path == "/.well-known/hpke-keys":
            body = swapped
        return web.Response(body=body, status=r.status, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    loop = LoopThread()
    runner = web.AppRunner(app)
    loop.run(runner.setup())
    port = free_port()
    loop.run(web.TCPSite(runner, "127.0.0.1", port).start())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.run(runner.cleanup())
        loop.stop()
