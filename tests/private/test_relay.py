"""The blind relay: sealed requests held for, forwarded, streamed back, billed from the enclave's
usage report, or by the stated estimate (marked) when it does not come."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson
import pytest
from openai import OpenAI
from sqlalchemy import select

from farebox.db.database import Database
from farebox.db.schema import holds
from farebox.money import ceil_div
from farebox.private.attestation import fingerprint
from farebox.private.ehbp import FrameReader
from farebox.private.ehbp_seal import seal_request
from farebox.private.policy import Policy
from farebox.sim.enclave import RunningEnclave

from private_support import (
    ENCLAVE_MODEL,
    IN_NANOS,
    OUT_NANOS,
    PRIVATE_MODEL,
    PUBLIC_MODEL,
    chat_body,
    gateway_key_config,
    running_proxy,
    sealed_chat,
)
from support import NANOS, Gateway, wait_until

MAX_OUTPUT = 4096  # the test models' max_output


def history(gw: Gateway, api_key: str) -> list[dict[str, Any]]:
    gw.loop.run(gw.services.ledger.flush())
    r = httpx.get(gw.url + "/queries/history", headers={"Authorization": f"Bearer {api_key}"})
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


def spent(gw: Gateway, credit_id: str, granted: int = NANOS) -> int:
    balance, reserved = gw.nanos(credit_id)
    assert reserved == 0
    return granted - balance


def usage_nanos(prompt: int, completion: int) -> int:
    return prompt * IN_NANOS + completion * OUT_NANOS


def test_openai_sdk_through_the_private_proxy_pays_the_enclaves_usage(
    private_gateway: Gateway, policy: Policy
) -> None:
    gw = private_gateway
    credit_id, api_key = gw.create_account(1)
    with running_proxy(gw.url, api_key, policy) as proxy:
        verified = proxy.health()
        client = OpenAI(base_url=proxy.url + "/v1", api_key="unused-by-the-proxy")
        reply = client.chat.completions.create(
            model=PRIVATE_MODEL, messages=[{"role": "user", "content": "Tell me about tides"}]
        )
        chunks = list(
            client.chat.completions.create(
                model=PRIVATE_MODEL,
                messages=[{"role": "user", "content": "And about the moon"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert verified["attested"] is True
    assert reply.model == ENCLAVE_MODEL  # the enclave saw its own id, mapped by the proxy
    assert reply.choices[0].message.content.startswith("Tell me about tides")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("And about the moon")
    assert reply.usage is not None and chunks[-1].usage is not None
    whole = usage_nanos(reply.usage.prompt_tokens, reply.usage.completion_tokens)
    streamed = usage_nanos(chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens)
    assert reply.usage.model_extra["cost"] == whole / NANOS  # from the gateway's x-farebox-cost
    assert spent(gw, credit_id) == whole + streamed == gw.history_total_nanos(credit_id)
    rows = history(gw, api_key)
    assert sorted(r["price_in_usd"] * NANOS for r in rows) == pytest.approx(
        sorted([whole, streamed])
    )
    for row in rows:
        assert row["model"] == PRIVATE_MODEL and row["reconcile"] is None
        assert row["attestation_fingerprint"] == verified["attestation_fingerprint"]
    assert {(r["input_count"], r["output_count"]) for r in rows} == {
        (reply.usage.prompt_tokens, reply.usage.completion_tokens),
        (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens),
    }
    assert gw.check().problems == []


def test_a_stream_whose_usage_trailer_never_comes_is_charged_the_stated_estimate(
    private_gateway: Gateway,
) -> None:
    gw = private_gateway
    credit_id, api_key = gw.create_account(1)
    reply = sealed_chat(
        gw.url, api_key, chat_body("estimate me please", stream=True, sim={"drop_trailer": True})
    )
    assert reply.status == 200 and not reply.cut and reply.plaintext.endswith(b"[DONE]\n\n")
    charged = usage_nanos(ceil_div(reply.request_plaintext, 4), reply.frames)
    assert spent(gw, credit_id) == charged == gw.history_total_nanos(credit_id)
    (row,) = history(gw, api_key)
    assert row["reconcile"] == "no_usage"
    assert (row["input_count"], row["output_count"]) == (
        ceil_div(reply.request_plaintext, 4),
        reply.frames,
    )


def test_a_whole_answer_without_a_usage_header_is_charged_by_its_bytes(
    private_gateway: Gateway,
) -> None:
    gw = private_gateway
    credit_id, api_key = gw.create_account(1)
    reply = sealed_chat(gw.url, api_key, chat_body("count my bytes", sim={"drop_usage": True}))
    assert reply.status == 200 and "x-farebox-cost" not in reply.headers
    charged = usage_nanos(ceil_div(reply.request_plaintext, 4), ceil_div(len(reply.plaintext), 4))
    assert spent(gw, credit_id) == charged == gw.history_total_nanos(credit_id)
    assert history(gw, api_key)[0]["reconcile"] == "no_usage"


def test_a_stream_the_enclave_cuts_charges_what_was_relayed_and_cuts_the_client_too(
    private_gateway: Gateway,
) -> None:
    gw = private_gateway
    credit_id, api_key = gw.create_account(1)
    server_log = RecordingHandler()
    logging.getLogger("uvicorn.error").addHandler(server_log)
    try:
        reply = sealed_chat(
            gw.url, api_key, chat_body("cut me off", stream=True, sim={"disconnect_after": 3})
        )
    finally:
        logging.getLogger("uvicorn.error").removeHandler(server_log)
    assert reply.status == 200 and reply.cut and reply.frames == 3
    # The server says so in one line, not with "Exception in ASGI application" and a traceback.
    assert [(r.levelname, r.getMessage()) for r in server_log.records] == [
        (
            "WARNING",
            "stream cut on purpose: the enclave broke its answer off; "
            "the client's stream is cut too",
        )
    ]
    charged = usage_nanos(ceil_div(reply.request_plaintext, 4), 3)
    assert wait_until(lambda: gw.nanos(credit_id)[1] == 0)
    assert spent(gw, credit_id) == charged == gw.history_total_nanos(credit_id)
    assert history(gw, api_key)[0]["reconcile"] == "enclave_cut"


def test_a_client_that_leaves_mid_stream_pays_for_what_it_was_sent(
    private_gateway: Gateway,
) -> None:
    gw = private_gateway
    credit_id, api_key = gw.create_account(1)
    body = chat_body("I will leave early", stream=True, sim={"stall_after": 2})
    reply = sealed_chat(gw.url, api_key, body, stop_after_frames=2)
    assert reply.frames == 2
    assert wait_until(lambda: gw.nanos(credit_id)[1] == 0)
    charged = usage_nanos(ceil_div(reply.request_plaintext, 4), 2)
    assert spent(gw, credit_id) == charged == gw.history_total_nanos(credit_id)
    assert history(gw, api_key)[0]["reconcile"] == "client_disconnect"


def test_an_enclave_failure_passes_through_sealed_and_costs_nothing(
    private_gateway: Gateway,
) -> None:
    gw = private_gateway
    credit_id, api_key = gw.create_account(1)
    reply = sealed_chat(gw.url, api_key, chat_body("fail", sim={"status": 500}))
    assert reply.status == 500 and "ehbp-response-nonce" in reply.headers
    assert reply.json()["error"]["type"] == "server_error"  # the enclave's own sealed error
    mismatch = sealed_chat(gw.url, api_key, chat_body("x") | {"model": "another-model"})
    assert mismatch.status == 400 and "serves 'test-enclave'" in mismatch.json()["error"]["message"]
    unreachable = sealed_chat(gw.url, api_key, chat_body("x"), model="private/dead")
    assert unreachable.status == 502 and "ehbp-response-nonce" not in unreachable.headers
    assert "Nothing was charged" in unreachable.json()["error"]["message"]
    assert spent(gw, credit_id) == 0 and history(gw, api_key) == []
    assert gw.check().problems == []


def test_usage_above_the_hold_is_charged_the_hold_and_marked(private_gateway: Gateway) -> None:
    gw = private_gateway
    credit_id, api_key = gw.create_account(1)
    reply = sealed_chat(gw.url, api_key, chat_body("long", sim={"output_tokens": MAX_OUTPUT + 500}))
    assert reply.status == 200 and reply.json()["usage"]["completion_tokens"] == MAX_OUTPUT + 500
    hold = usage_nanos(reply.request_plaintext, MAX_OUTPUT)
    assert spent(gw, credit_id) == hold == gw.history_total_nanos(credit_id)
    assert history(gw, api_key)[0]["reconcile"] == "usage_above_hold"
    usage = reply.json()["usage"]
    worth = usage_nanos(usage["prompt_tokens"], usage["completion_tokens"])

    def losses() -> list[dict[str, Any]]:
        return gw.loop.run(gw.services.losses.recent(10, account_id=gw.account_id(credit_id)))

    assert wait_until(lambda: len(losses()) == 1)  # the operator's loss, recorded
    (loss,) = losses()
    assert (loss["model"], loss["unbilled"]) == (PRIVATE_MODEL, worth - hold)


def test_a_rotated_enclave_key_gives_422_free_and_clients_refetch(
    private_gateway: Gateway, enclave: RunningEnclave, policy: Policy
) -> None:
    gw = private_gateway
    credit_id, api_key = gw.create_account(1)
    stale = gateway_key_config(gw.url)
    assert sealed_chat(gw.url, api_key, chat_body("before"), keys=stale).status == 200
    before = spent(gw, credit_id)
    with running_proxy(gw.url, api_key, policy) as proxy:
        old_fingerprint = proxy.health()["attestation_fingerprint"]
        assert httpx.post(enclave.url + "/sim/enclave/rotate").status_code == 200
        refused = sealed_chat(gw.url, api_key, chat_body("stale"), keys=stale)
        assert refused.status == 422
        assert refused.json()["type"] == "urn:ietf:params:ehbp:error:key-config"
        assert spent(gw, credit_id) == before  # nothing charged for the refusal
        fresh = gateway_key_config(gw.url)  # the gateway dropped its cached key on the 422
        assert fresh.public_key != stale.public_key
        assert sealed_chat(gw.url, api_key, chat_body("after"), keys=fresh).status == 200
        # The proxy still holds the old key: it gets a 422, attests again and retries once.
        client = OpenAI(base_url=proxy.url + "/v1", api_key="unused")
        answer = client.chat.completions.create(
            model=PRIVATE_MODEL, messages=[{"role": "user", "content": "after rotation"}]
        )
        assert answer.choices[0].message.content.startswith("after rotation")
        assert proxy.health()["attestation_fingerprint"] != old_fingerprint
    assert gw.check().problems == []


def test_the_attestation_bundle_and_keys_are_relayed_unchanged(
    private_gateway: Gateway, enclave: RunningEnclave
) -> None:
    gw = private_gateway
    own_bundle = httpx.get(enclave.url + "/attestation").content
    own_keys = httpx.get(enclave.url + "/.well-known/hpke-keys").content
    assert httpx.get(gw.url + "/private/attestation").content == own_bundle
    for path in ("/.well-known/hpke-keys", "/private/.well-known/hpke-keys"):
        r = httpx.get(gw.url + path)
        assert r.headers["content-type"] == "application/ohttp-keys" and r.content == own_keys
    by_model = httpx.get(gw.url + "/private/attestation", params={"model": PRIVATE_MODEL})
    assert by_model.content == own_bundle
    assert (
        httpx.get(gw.url + "/private/attestation", params={"model": "private/nope"}).status_code
        == 404
    )


def test_the_preflight_says_in_plaintext_what_a_request_would_hold(
    private_gateway: Gateway,
) -> None:
    gw = private_gateway
    _, api_key = gw.create_account(1)
    _, broke = gw.create_account(0)
    ask = {"Authorization": f"Bearer {api_key}", "X-Private-Model": PRIVATE_MODEL}
    ok = httpx.get(
        gw.url + "/private/v1/preflight", headers={**ask, "X-Private-Body-Bytes": "1000"}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["hold_usd"] == usage_nanos(1000, MAX_OUTPUT) / NANOS
    assert ok.json()["enclave_model"] == ENCLAVE_MODEL
    poor = httpx.get(
        gw.url + "/private/v1/preflight",
        headers={**ask, "Authorization": f"Bearer {broke}", "X-Private-Body-Bytes": "10"},
    )
    assert poor.status_code == 402 and poor.json()["error"]["code"] == "insufficient_funds"
    assert "available" in poor.json()
    for odd in ("\u00b2", "\u00b9\u00b2", "-1", "9" * 13, "1e3"):  # "²" passed isdigit(): a 500
        bad = httpx.get(
            gw.url + "/private/v1/preflight",
            headers=[
                (b"Authorization", f"Bearer {api_key}".encode()),
                (b"X-Private-Model", PRIVATE_MODEL.encode()),
                (b"X-Private-Body-Bytes", odd.encode("latin-1")),
            ],
        )
        assert bad.status_code == 400, bad.text
        assert bad.json()["error"]["param"] == "x-private-body-bytes"


def _sealed_headers(api_key: str, **extra: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {api_key}",
        "X-Private-Model": PRIVATE_MODEL,
        "Ehbp-Encapsulated-Key": "ab" * 32,
        **extra,
    }


BAD = [
    ("no key", {"Authorization": ""}, b"\x00\x00\x00\x10" + b"x" * 16, 401),
    ("a wrong key", {"Authorization": "Bearer sk-nope"}, b"\x00\x00\x00\x10" + b"x" * 16, 401),
    ("no model", {"X-Private-Model": ""}, b"\x00\x00\x00\x10" + b"x" * 16, 400),
    ("an unknown model", {"X-Private-Model": "private/nope"}, b"\x00\x00\x00\x10" + b"x" * 16, 404),
    ("a public model", {"X-Private-Model": PUBLIC_MODEL}, b"\x00\x00\x00\x10" + b"x" * 16, 400),
    ("no EHBP header", {"Ehbp-Encapsulated-Key": ""}, b"\x00\x00\x00\x10" + b"x" * 16, 400),
    ("a bad EHBP header", {"Ehbp-Encapsulated-Key": "zz"}, b"\x00\x00\x00\x10" + b"x" * 16, 400),
    ("plaintext JSON", {}, orjson.dumps(chat_body("secret")), 400),
    ("an empty body", {}, b"", 400),
    ("a cut frame", {}, b"\x00\x00\x01\x00" + b"x" * 20, 400),
    ("an oversized body", {}, b"\x00" * (4 * 1024 * 1024 + 1), 413),
]


@pytest.mark.parametrize(("what", "headers", "body", "status"), BAD, ids=[b[0] for b in BAD])
def test_bad_private_requests_get_a_clear_4xx_and_move_no_money(
    private_gateway: Gateway, what: str, headers: dict[str, str], body: bytes, status: int
) -> None:
    gw = private_gateway
    credit_id, api_key = gw.create_account(1)
    sent = {k: v for k, v in _sealed_headers(api_key, **headers).items() if v}
    r = httpx.post(gw.url + "/private/v1/chat/completions", content=body, headers=sent)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"] and error["type"]
    assert spent(gw, credit_id) == 0 and history(gw, api_key) == []


def test_a_customer_without_funds_is_refused_before_the_enclave_sees_anything(
    private_gateway: Gateway, enclave: RunningEnclave
) -> None:
    gw = private_gateway
    credit_id, api_key = gw.create_account(0)
    asked = httpx.get(enclave.url + "/sim/enclave/stats").json()["chat_requests"]
    reply = sealed_chat(gw.url, api_key, chat_body("free lunch?"))
    assert reply.status == 402 and "ehbp-response-nonce" not in reply.headers
    assert reply.json()["error"]["code"] == "insufficient_funds"
    assert httpx.get(enclave.url + "/sim/enclave/stats").json()["chat_requests"] == asked
    assert gw.nanos(credit_id) == (0, 0)


def test_the_public_chat_endpoint_points_private_models_to_the_proxy(
    private_gateway: Gateway,
) -> None:
    gw = private_gateway
    credit_id, api_key = gw.create_account(1)
    r = httpx.post(
        gw.url + "/v1/chat/completions",
        json={"model": PRIVATE_MODEL, "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert r.status_code == 400 and "farebox private-proxy" in r.json()["error"]["message"]
    assert spent(gw, credit_id) == 0


def test_a_running_private_stream_records_its_estimate_for_crash_recovery(
    private_gateway: Gateway,
) -> None:
    """Each hold renewal records what the sweeper posts if the process dies mid-answer: the
    estimate so far, with a history row marked `recovered` and the attestation fingerprint."""
    gw = private_gateway
    credit_id, api_key = gw.create_account(1)
    body = chat_body("crash while streaming", stream=True, sim={"stall_after": 3})
    plaintext = orjson.dumps(body)
    sealed = seal_request(gateway_key_config(gw.url), plaintext)
    headers = {
        "Authorization": f"Bearer {api_key}",
        "X-Private-Model": PRIVATE_MODEL,
        "Ehbp-Encapsulated-Key": sealed.enc_hex,
    }
    url = gw.url + "/private/v1/chat/completions"
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", url, content=sealed.body, headers=headers) as r,
    ):
        reader, chunks = FrameReader(), r.iter_raw()
        while reader.frames < 3:
            reader.feed(next(chunks))
        gw.loop.run(gw.services.chat.leases.renew_now())
        db = Database(gw.settings.database_url, threads=1)
        try:
            (row,) = db.read_sync(
                lambda conn: conn.execute(
                    select(holds.c.recorded, holds.c.recovery).where(
                        holds.c.account_id == gw.account_id(credit_id), holds.c.seq == 0
                    )
                ).fetchall()
            )
        finally:
            db.close()
    estimate = usage_nanos(ceil_div(len(plaintext), 4), 3)
    assert row.recorded == estimate
    recovery = orjson.loads(row.recovery)
    assert (recovery["reconcile"], recovery["output_count"]) == ("recovered", 3)
    bundle = httpx.get(gw.url + "/private/attestation").content
    assert recovery["attestation"] == fingerprint(bundle)
    assert wait_until(lambda: gw.nanos(credit_id)[1] == 0)  # the client left: settled as such
    assert spent(gw, credit_id) == estimate
    assert history(gw, api_key)[0]["reconcile"] == "client_disconnect"


class RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
