"""The private relay admits keys like every other surface: a private model outside a key's
allowed_models (named by X-Private-Model) is 403 and a key past its rpm_limit is 429, in clear,
before anything is held or sent to an enclave."""

from __future__ import annotations

from typing import Any

import httpx

from private_support import PRIVATE_MODEL, VISION_MODEL, chat_body, sealed_chat
from support import Gateway


def key_with(gw: Gateway, **limits: Any) -> tuple[str, str]:
    credit_id, _ = gw.create_account(1)
    with gw.client() as c:
        r = c.post("/keys", json={"name": "scoped", **limits}, headers={"x-credit-id": credit_id})
        assert r.status_code == 201, r.text
        return credit_id, r.json()["data"]["api_key"]


def test_a_private_model_outside_the_scope_is_403_before_any_hold(
    private_gateway: Gateway,
) -> None:
    gw = private_gateway
    credit_id, key = key_with(gw, allowed_models=[PRIVATE_MODEL])
    assert sealed_chat(gw.url, key, chat_body("hello")).status == 200
    before = gw.nanos(credit_id)
    refused = sealed_chat(gw.url, key, chat_body("hello"), model=VISION_MODEL)
    assert refused.status == 403
    assert b"model_not_allowed" in refused.plaintext
    assert gw.nanos(credit_id) == before


def test_a_key_past_its_rpm_limit_is_429_on_the_relay(private_gateway: Gateway) -> None:
    gw = private_gateway
    credit_id, key = key_with(gw, rpm_limit=1)
    assert sealed_chat(gw.url, key, chat_body("hello")).status == 200
    before = gw.nanos(credit_id)
    refused = sealed_chat(gw.url, key, chat_body("hello"))
    assert refused.status == 429 and int(refused.headers["retry-after"]) >= 1
    assert gw.nanos(credit_id) == before


def _preflight(gw: Gateway, key: str, model: str) -> httpx.Response:
    return httpx.get(
        gw.url + "/private/v1/preflight",
        headers={
            "Authorization": f"Bearer {key}",
            "X-Private-Model": model,
            "X-Private-Body-Bytes": "100",
        },
    )


def test_the_preflight_answers_the_relay_s_403_and_429_and_counts_nothing(
    private_gateway: Gateway,
) -> None:
    """A client that asks first (the local proxy, an npm ehbp one) learns the refusal in clear,
    and asking does not use up the key's requests."""
    gw = private_gateway
    _, scoped = key_with(gw, allowed_models=[PRIVATE_MODEL])
    assert _preflight(gw, scoped, PRIVATE_MODEL).status_code == 200
    refused = _preflight(gw, scoped, VISION_MODEL)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "model_not_allowed"

    _, limited = key_with(gw, rpm_limit=1)
    for _ in range(3):  # asking counts nothing: the one request a minute is still there
        assert _preflight(gw, limited, PRIVATE_MODEL).status_code == 200
    assert sealed_chat(gw.url, limited, chat_body("hello")).status == 200
    late = _preflight(gw, limited, PRIVATE_MODEL)
    assert late.status_code == 429 and int(late.headers["retry-after"]) >= 1
    assert late.json()["error"]["type"] == "rate_limit_error"
