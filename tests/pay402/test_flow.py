"""Pay per request on images and videos, over raw HTTP as `curl` would do it: the challenge, the
credential in each accepted form, the ledger behind it, and what a failure upstream leaves."""

from __future__ import annotations

import time

import httpx

from pay402_support import (
    GENERATIONS,
    HIGH,
    LOW,
    MEDIUM,
    challenges,
    credential_nanos,
    dev_pay,
    history,
    invoices_issued,
    l402,
    money_in,
    pay_l402,
    payment_credential,
    payment_hash,
    post,
    revenue,
    unb64url_json,
)
from support import Gateway, wait_until

NANOS = 1_000_000_000


def test_keyless_image_request_gets_both_challenges_and_the_price(pay_gw: Gateway) -> None:
    before = revenue(pay_gw)
    r = post(pay_gw, MEDIUM)
    assert r.status_code == 402, r.text
    assert r.headers["cache-control"] == "no-store"
    found = challenges(r)
    assert set(found) == {"L402", "Payment"}
    assert found["L402"]["invoice"].startswith("lnbcrt400n1")  # 40 sats, regtest
    payment = found["Payment"]
    assert (payment["method"], payment["intent"], payment["realm"]) == (
        "lightning",
        "charge",
        "farebox",
    )
    request = unb64url_json(payment["request"])
    assert request["amount"] == "40" and request["currency"] == "sat"
    assert request["methodDetails"]["invoice"] == found["L402"]["invoice"]
    assert request["methodDetails"]["paymentHash"] == payment_hash(r)
    assert request["methodDetails"]["network"] == "regtest"
    body = r.json()
    assert body["error"]["code"] == "payment_required"
    assert body["error"]["type"] == "payment_required"
    assert body["price_usd"] == "0.04" and body["price_sats"] == 40
    assert body["l402"]["macaroon"] == found["L402"]["macaroon"]
    assert "$0.04 (40 sats)" in body["error"]["message"]
    assert credential_nanos(pay_gw, payment_hash(r)) is None  # nothing is credited before payment
    assert revenue(pay_gw) == before


def test_pay_then_replay_with_l402_serves_once_and_charges_once(pay_gw: Gateway) -> None:
    before = revenue(pay_gw)
    first = post(pay_gw, MEDIUM)
    auth = pay_l402(pay_gw, first)
    paid = post(pay_gw, MEDIUM, auth)
    assert paid.status_code == 200, paid.text
    assert paid.headers["x-farebox-cost"] == "0.04"
    assert "payment-receipt" not in paid.headers  # a Payment-scheme receipt only
    image = httpx.get(paid.json()["data"][0]["url"], timeout=30)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    ph = payment_hash(first)
    assert money_in(pay_gw, ph) == [("topups", "pay402", 40_000_000)]
    assert history(pay_gw, ph) == [("l402", "image", "sim-image", 40_000_000)]
    assert credential_nanos(pay_gw, ph) == (0, 0)
    assert revenue(pay_gw) - before == 40_000_000
    # a replay (l402-requests caches and replays tokens) gets a fresh challenge, not an image
    again = post(pay_gw, MEDIUM, auth)
    assert again.status_code == 402, again.text
    assert again.json()["error"]["code"] == "invalid_challenge"
    assert "already paid for its request" in again.json()["error"]["message"]
    assert payment_hash(again) != ph
    assert history(pay_gw, ph) == [("l402", "image", "sim-image", 40_000_000)]
    assert revenue(pay_gw) - before == 40_000_000


def test_lsat_and_token_forms_are_accepted(pay_gw: Gateway) -> None:
    for form in (
        "LSAT {mac}:{pre}",
        "L402 token={mac}:{pre}",
        'L402 token="{mac}", preimage="{pre}"',
    ):
        r = post(pay_gw, LOW)
        mac, invoice = l402(r)
        auth = form.format(mac=mac, pre=dev_pay(pay_gw, invoice))
        paid = post(pay_gw, LOW, auth)
        assert paid.status_code == 200, (form, paid.text)
        assert history(pay_gw, payment_hash(r)) == [("l402", "image", "sim-image", 10_000_000)]


def test_payment_scheme_credential_gets_a_receipt(pay_gw: Gateway) -> None:
    r = post(pay_gw, MEDIUM)
    params = challenges(r)["Payment"]
    preimage = dev_pay(pay_gw, challenges(r)["L402"]["invoice"])
    paid = post(pay_gw, MEDIUM, payment_credential(params, preimage))
    assert paid.status_code == 200, paid.text
    assert paid.headers["cache-control"] == "private"
    receipt = unb64url_json(paid.headers["payment-receipt"])
    assert receipt["method"] == "lightning" and receipt["status"] == "success"
    assert receipt["challengeId"] == params["id"]
    assert receipt["reference"] == payment_hash(r)
    assert preimage not in paid.headers["payment-receipt"]
    assert history(pay_gw, payment_hash(r)) == [("payment", "image", "sim-image", 40_000_000)]
    # the same payment presented in the other scheme buys nothing more
    mac, _ = l402(r)
    other = post(pay_gw, MEDIUM, f"L402 {mac}:{preimage}")
    assert other.status_code == 402
    assert len(history(pay_gw, payment_hash(r))) == 1


def test_invalid_request_is_400_before_any_invoice(pay_gw: Gateway) -> None:
    issued = invoices_issued(pay_gw)
    for body in (
        {"model": "sim-image"},  # no prompt
        {**MEDIUM, "quality": "ultra"},
        {**MEDIUM, "n": 9},
        {"model": "no-such-model", "prompt": "x"},
        {"model": "openai/text-embedding-3-small", "prompt": "x"},
    ):
        r = post(pay_gw, body)
        assert r.status_code in (400, 404), r.text
        assert "www-authenticate" not in r.headers
    with pay_gw.client() as c:
        bad_json = c.post(
            GENERATIONS, content=b"{nope", headers={"Content-Type": "application/json"}
        )
    assert bad_json.status_code == 400
    assert invoices_issued(pay_gw) == issued


def test_a_bad_api_key_is_401_not_a_challenge(pay_gw: Gateway) -> None:
    r = post(pay_gw, MEDIUM, "Bearer sk-not-a-key")
    assert r.status_code == 401
    assert "www-authenticate" not in r.headers


def test_a_key_still_pays_from_the_account(pay_gw: Gateway) -> None:
    credit_id, key = pay_gw.create_account(1)
    r = post(pay_gw, MEDIUM, f"Bearer {key}")
    assert r.status_code == 200, r.text
    assert pay_gw.nanos(credit_id) == (NANOS - 40_000_000, 0)


def test_upstream_failure_keeps_the_money_on_the_credential_for_a_retry(pay_gw: Gateway) -> None:
    before = revenue(pay_gw)
    failing = {"model": "failing-image", "prompt": "x"}  # $0.05, its only route fails
    r = post(pay_gw, failing)
    auth = pay_l402(pay_gw, r)
    ph = payment_hash(r)
    failed = post(pay_gw, failing, auth)
    assert failed.status_code in (502, 503), failed.text
    assert credential_nanos(pay_gw, ph) == (50_000_000, 0)  # paid, nothing charged
    assert history(pay_gw, ph) == []
    # the same credential buys a request on the same endpoint that costs no more
    retry = post(pay_gw, MEDIUM, auth)
    assert retry.status_code == 200, retry.text
    assert history(pay_gw, ph) == [("l402", "image", "sim-image", 40_000_000)]
    assert credential_nanos(pay_gw, ph) == (10_000_000, 0)
    # what is left cannot buy another $0.04 image
    short = post(pay_gw, MEDIUM, auth)
    assert short.status_code == 402
    assert revenue(pay_gw) - before == 40_000_000


def test_the_retry_window_ends(pay_gw: Gateway) -> None:
    service = pay_gw.services.pay402
    config = service.config
    failing = {"model": "failing-image", "prompt": "x"}
    try:
        service.config = type(config)(**{**config.__dict__, "retry_s": 0.5})
        r = post(pay_gw, failing)
        auth = pay_l402(pay_gw, r)
        assert post(pay_gw, failing, auth).status_code in (502, 503)
        time.sleep(0.6)
        late = post(pay_gw, MEDIUM, auth)
    finally:
        service.config = config
    assert late.status_code == 402
    assert "retry window has ended" in late.json()["error"]["message"]
    assert credential_nanos(pay_gw, payment_hash(r)) == (50_000_000, 0)  # kept, never revenue


def test_a_cheap_credential_cannot_buy_a_dearer_request(pay_gw: Gateway) -> None:
    r = post(pay_gw, LOW)
    auth = pay_l402(pay_gw, r)
    dear = post(pay_gw, HIGH, auth)
    assert dear.status_code == 402
    assert dear.json()["error"]["code"] == "payment_insufficient"
    assert dear.json()["price_sats"] == 170
    assert credential_nanos(pay_gw, payment_hash(r)) is None  # refused before crediting
    assert post(pay_gw, LOW, auth).status_code == 200  # still good for its own request


def test_a_credential_for_another_endpoint_is_refused(pay_gw: Gateway) -> None:
    video = {"model": "kling-2.1-pro", "prompt": "waves", "duration": "5"}
    r = post(pay_gw, video, path="/v1/videos")  # $0.25: dearer than any image here
    assert r.status_code == 402
    auth = pay_l402(pay_gw, r)
    wrong = post(pay_gw, LOW, auth)
    assert wrong.status_code == 402
    assert "pays for /v1/videos, not /v1/images/generations" in wrong.json()["error"]["message"]
    assert credential_nanos(pay_gw, payment_hash(r)) is None


def test_edits_are_paid_per_request_too(pay_gw: Gateway) -> None:
    from test_images import png_bytes

    files = {"image": ("in.png", png_bytes(), "image/png")}
    data = {"model": "sim-image", "prompt": "make it blue", "quality": "low"}
    with pay_gw.client() as c:
        r = c.post("/v1/images/edits", files=files, data=data)
        assert r.status_code == 402, r.text
        auth = pay_l402(pay_gw, r)
        paid = c.post("/v1/images/edits", files=files, data=data, headers={"Authorization": auth})
    assert paid.status_code == 200, paid.text
    assert history(pay_gw, payment_hash(r)) == [("l402", "image", "sim-image", 10_000_000)]


def test_video_paid_per_request_settles_when_the_job_ends(pay_gw: Gateway) -> None:
    body = {"model": "kling-2.1-pro", "prompt": "ocean waves", "duration": "5", "quality": "720p"}
    r = post(pay_gw, body, path="/v1/videos")
    assert r.status_code == 402
    assert r.json()["price_usd"] == "0.25" and r.json()["price_sats"] == 250
    params = challenges(r)["Payment"]
    preimage = dev_pay(pay_gw, challenges(r)["L402"]["invoice"])
    submitted = post(pay_gw, body, payment_credential(params, preimage), path="/v1/videos")
    assert submitted.status_code == 202, submitted.text
    assert "payment-receipt" in submitted.headers
    ph = payment_hash(r)
    assert wait_until(lambda: history(pay_gw, ph) != [], timeout=30)
    assert history(pay_gw, ph) == [("payment", "video", "kling-2.1-pro", 250_000_000)]
    assert credential_nanos(pay_gw, ph) == (0, 0)


def test_failed_video_job_leaves_the_payment_on_the_credential(pay_gw: Gateway) -> None:
    body = {"model": "failing-video", "prompt": "x", "duration": "5"}
    r = post(pay_gw, body, path="/v1/videos")
    auth = pay_l402(pay_gw, r)
    submitted = post(pay_gw, body, auth, path="/v1/videos")
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]

    def failed() -> bool:
        job = pay_gw.loop.run(pay_gw.services.media.videos.jobs.get(job_id))
        return job is not None and job.status == "failed"

    assert wait_until(failed, timeout=30)
    ph = payment_hash(r)
    assert credential_nanos(pay_gw, ph) == (250_000_000, 0)
    assert history(pay_gw, ph) == []
    # the credential resubmits, this time to a model that works
    good = {"model": "kling-2.1-pro", "prompt": "waves", "duration": "5"}
    assert post(pay_gw, good, auth, path="/v1/videos").status_code == 202
    assert wait_until(lambda: history(pay_gw, ph) != [], timeout=30)
    assert credential_nanos(pay_gw, ph) == (0, 0)
