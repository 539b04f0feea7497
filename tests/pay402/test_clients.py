"""Published 402 clients no one here wrote pay for images and videos: PyPI `l402-requests` (L402,
with a wallet subclass paying through the dev wallet), PyPI `pympp` and npm `mppx` (the Payment
scheme, each with a short lightning charge method). Locally a missing client skips with the
reason; under CI=true it fails (.ci/run installs them)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pay402_support import (
    GENERATIONS,
    HIGH,
    LOW,
    MEDIUM,
    DevWallet,
    dev_pay,
    l402_wallet,
    require,
    revenue,
)
from support import Gateway, missing_tool, serve_app, wait_until

REPO = Path(__file__).resolve().parents[2]
MPPX_DIR = Path(os.environ.get("FAREBOX_MPPX_DIR") or REPO / ".cache" / "pay402-node")


def test_l402_requests_pays_replays_and_pays_again(pay_gw: Gateway) -> None:
    l402_requests = require("l402_requests", "l402-requests")
    wallet = l402_wallet(pay_gw)
    before = revenue(pay_gw)
    client = l402_requests.L402Client(wallet=wallet, timeout=30)
    first = client.post(pay_gw.url + GENERATIONS, json=MEDIUM)
    assert first.status_code == 200, first.text
    assert httpx.get(first.json()["data"][0]["url"], timeout=30).status_code == 200
    assert len(wallet.wallet.paid) == 1
    # it replays its cached token; the spent token gets a fresh challenge, which it pays
    second = client.post(pay_gw.url + GENERATIONS, json=LOW)
    assert second.status_code == 200, second.text
    assert len(wallet.wallet.paid) == 2
    # the token cached for /v1/images is refused on /v1/images/edits (another endpoint)
    from test_images import png_bytes

    edit = client.post(
        pay_gw.url + "/v1/images/edits",
        files={"image": ("in.png", png_bytes(), "image/png")},
        data={"model": "sim-image", "prompt": "blue", "quality": "low"},
    )
    assert edit.status_code == 200, edit.text
    assert len(wallet.wallet.paid) == 3
    assert revenue(pay_gw) - before == 40_000_000 + 10_000_000 + 10_000_000


def test_l402_requests_refuses_what_its_budget_forbids(pay_gw: Gateway) -> None:
    l402_requests = require("l402_requests", "l402-requests")
    wallet = l402_wallet(pay_gw)
    budget = l402_requests.BudgetController(max_sats_per_request=100)
    client = l402_requests.L402Client(wallet=wallet, budget=budget, timeout=30)
    with pytest.raises(l402_requests.BudgetExceededError):
        client.post(pay_gw.url + GENERATIONS, json=HIGH)  # 170 sats
    assert wallet.wallet.paid == []


def pympp_lightning_charge(pay: Any) -> Any:
    """The lightning charge method pympp 0.16.0 lacks: request and payload schemas plus paying."""
    require("mpp", "pympp")
    from mpp import Credential
    from mpp.methods import Method
    from mpp.runtime import ClientMethod, CredentialParams
    from pydantic import BaseModel

    class LightningRequest(BaseModel):
        amount: str
        currency: str
        description: str | None = None
        methodDetails: dict[str, str]

    class LightningPayload(BaseModel):
        preimage: str

    definition = Method(
        name="lightning",
        intent="charge",
        request_model=LightningRequest,
        payload_model=LightningPayload,
    )

    async def create_credential(params: CredentialParams) -> str:
        challenge = params.challenge
        preimage = await pay(challenge.request["methodDetails"]["invoice"])
        return Credential(
            challenge=challenge.to_echo(), payload={"preimage": preimage}
        ).to_authorization()

    return ClientMethod(method=definition, create_credential=create_credential)


def test_pympp_pays_with_the_payment_scheme_and_reads_the_receipt(pay_gw: Gateway) -> None:
    method = pympp_lightning_charge(DevWallet(pay_gw).pay)
    from mpp import Receipt
    from mpp.client import Mpp

    async def run() -> tuple[httpx.Response, httpx.Response]:
        async with Mpp(methods=[method]) as mpp:
            image = await mpp.fetch(
                pay_gw.url + GENERATIONS, method="POST", json=MEDIUM, timeout=30
            )
            video = await mpp.fetch(
                pay_gw.url + "/v1/videos",
                method="POST",
                json={"model": "kling-2.1-pro", "prompt": "waves", "duration": "5"},
                timeout=30,
            )
            return image, video

    before = revenue(pay_gw)
    image, video = asyncio.run(run())
    assert image.status_code == 200, image.text
    receipt = Receipt.from_payment_receipt(image.headers["payment-receipt"])
    assert receipt.status == "success" and receipt.method == "lightning"
    assert len(receipt.reference) == 64
    assert video.status_code == 202, video.text
    assert Receipt.from_payment_receipt(video.headers["payment-receipt"]).status == "success"
    assert wait_until(lambda: revenue(pay_gw) - before == 40_000_000 + 250_000_000, timeout=30)


@pytest.fixture
def pay_url(pay_gw: Gateway) -> Iterator[str]:
    """A tiny wallet service for the Node client: POST {bolt11} -> {preimage}."""

    async def pay(request: Request) -> JSONResponse:
        bolt11 = (await request.json())["bolt11"]
        return JSONResponse({"preimage": await asyncio.to_thread(dev_pay, pay_gw, bolt11)})

    with serve_app(Starlette(routes=[Route("/pay", pay, methods=["POST"])])) as url:
        yield url + "/pay"


def run_mppx(url: str, body: dict[str, Any], pay: str) -> dict[str, Any]:
    if shutil.which("node") is None:
        missing_tool("node is not installed")
    if not (MPPX_DIR / "node_modules" / "mppx" / "package.json").exists():
        missing_tool(
            f"npm mppx is not installed in {MPPX_DIR}: npm install --prefix .cache/pay402-node "
            "--legacy-peer-deps mppx@0.11.0 viem@2.54.0 (.ci/run does)"
        )
    script = MPPX_DIR / "mppx_client.mjs"  # beside its node_modules, so `import 'mppx'` resolves
    shutil.copyfile(Path(__file__).with_name("mppx_client.mjs"), script)
    done = subprocess.run(
        ["node", str(script), url, orjson.dumps(body).decode(), pay],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return dict(orjson.loads(done.stdout.strip().splitlines()[-1]))


def test_mppx_pays_with_the_payment_scheme_and_reads_the_receipt(
    pay_gw: Gateway, pay_url: str
) -> None:
    before = revenue(pay_gw)
    out = run_mppx(pay_gw.url + GENERATIONS, MEDIUM, pay_url)
    assert out["status"] == 200, out
    assert out["receipt"]["status"] == "success" and out["receipt"]["method"] == "lightning"
    assert out["body"]["data"][0]["url"].startswith(pay_gw.url)
    assert revenue(pay_gw) - before == 40_000_000
