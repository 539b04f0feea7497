"""Per-key rpm_limit, tpm_limit and allowed_models: set and shown on the keys API, bad values a
clear 400 (never a 500, nothing changed), and enforced before any hold or upstream call: 429 with
Retry-After in our envelope (Anthropic's on /v1/messages), 403 for a model outside the scope."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai
import pytest

from farebox.sim.server import SimServer

from support import Gateway, new_account

PROMPT = [{"role": "user", "content": "Say something short"}]


def hdr(credit_id: str) -> dict[str, str]:
    return {"x-credit-id": credit_id}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def chat(c: httpx.Client, key: str, model: str = "test-model", **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": PROMPT, "max_tokens": 20, **extra}
    return c.post("/v1/chat/completions", json=body, headers=bearer(key))


def messages(c: httpx.Client, key: str, model: str = "claude-test") -> httpx.Response:
    body = {"model": model, "max_tokens": 20, "messages": PROMPT}
    return c.post("/v1/messages", json=body, headers={"x-api-key": key})


def make_key(c: httpx.Client, credit_id: str, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "limited")
    r = c.post("/keys", json=body, headers=hdr(credit_id))
    assert r.status_code == 201, r.text
    return dict(r.json()["data"])


def upstream_calls(sim: SimServer) -> int:
    return int(sim.state.stats.snapshot()["requests"])  # type: ignore[call-overload]


def test_new_keys_show_no_limits_and_limits_round_trip(c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 0)
    plain = make_key(c, credit_id, name="plain")
    assert (plain["rpm_limit"], plain["tpm_limit"], plain["allowed_models"]) == (None, None, None)
    made = make_key(
        c, credit_id, rpm_limit=60, tpm_limit=100_000, allowed_models=["test-model", "claude-*"]
    )
    assert made["rpm_limit"] == 60 and made["tpm_limit"] == 100_000
    assert made["allowed_models"] == ["test-model", "claude-*"]
    got = c.get(f"/keys/{made['_id']}", headers=hdr(credit_id)).json()["data"]
    assert got["allowed_models"] == ["test-model", "claude-*"] and got["rpm_limit"] == 60
    r = c.patch(
        f"/keys/{made['_id']}",
        json={"rpm_limit": None, "tpm_limit": 5, "allowed_models": None},
        headers=hdr(credit_id),
    )
    assert r.status_code == 200, r.text
    patched = r.json()["data"]
    assert (patched["rpm_limit"], patched["tpm_limit"], patched["allowed_models"]) == (
        None,
        5,
        None,
    )
    # a PATCH that leaves them out leaves them alone
    r = c.patch(f"/keys/{made['_id']}", json={"name": "renamed"}, headers=hdr(credit_id))
    assert r.json()["data"]["tpm_limit"] == 5
    listed = c.get("/keys", headers=hdr(credit_id)).json()["data"]
    assert [k["tpm_limit"] for k in listed] == [None, None, 5]


BAD_VALUES = [
    ({"rpm_limit": 0}, "rpm_limit"),
    ({"rpm_limit": -5}, "rpm_limit"),
    ({"rpm_limit": 10**12}, "rpm_limit"),
    ({"rpm_limit": 1.5}, "rpm_limit"),
    ({"rpm_limit": "60"}, "rpm_limit"),
    ({"rpm_limit": True}, "rpm_limit"),
    ({"rpm_limit": [60]}, "rpm_limit"),
    ({"tpm_limit": 0}, "tpm_limit"),
    ({"tpm_limit": 10**30}, "tpm_limit"),
    ({"tpm_limit": {"n": 1}}, "tpm_limit"),
    ({"allowed_models": "test-model"}, "allowed_models"),
    ({"allowed_models": []}, "allowed_models"),
    ({"allowed_models": [""]}, "allowed_models[0]"),
    ({"allowed_models": ["ok", 5]}, "allowed_models[1]"),
    ({"allowed_models": ["x" * 129]}, "allowed_models[0]"),
    ({"allowed_models": ["bad\x00name"]}, "allowed_models[0]"),
    ({"allowed_models": [f"m{i}" for i in range(65)]}, "allowed_models"),
    ({"allowed_models": [None]}, "allowed_models[0]"),
]


@pytest.mark.parametrize(("body", "param"), BAD_VALUES)
def test_bad_limits_are_a_clear_400_and_change_nothing(
    gateway: Gateway, c: httpx.Client, body: dict[str, Any], param: str
) -> None:
    credit_id, _ = new_account(c, 1)
    before = gateway.nanos(credit_id)
    r = c.post("/keys", json={"name": "bad", **body}, headers=hdr(credit_id))
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param and err["type"] == "invalid_request_error"
    assert param.split("[")[0] in err["message"]
    key = make_key(c, credit_id, name="good", rpm_limit=7)
    r = c.patch(f"/keys/{key['_id']}", json=body, headers=hdr(credit_id))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    shown = c.get(f"/keys/{key['_id']}", headers=hdr(credit_id)).json()["data"]
    assert (shown["rpm_limit"], shown["tpm_limit"], shown["allowed_models"]) == (7, None, None)
    names = [k["name"] for k in c.get("/keys", headers=hdr(credit_id)).json()["data"]]
    assert names == ["default", "good"]
    assert gateway.nanos(credit_id) == before


def test_past_rpm_limit_429_with_retry_after_holds_and_calls_nothing(
    gateway: Gateway, c: httpx.Client, sim: SimServer
) -> None:
    credit_id, _ = new_account(c, 1)
    key = make_key(c, credit_id, rpm_limit=2)["api_key"]
    assert chat(c, key).status_code == 200
    assert chat(c, key).status_code == 200
    balance = gateway.nanos(credit_id)
    calls = upstream_calls(sim)
    r = chat(c, key)
    assert r.status_code == 429, r.text
    assert r.headers["retry-after"].isdigit() and 1 <= int(r.headers["retry-after"]) <= 120
    err = r.json()["error"]
    assert err["type"] == "rate_limit_error" and err["code"] == "rate_limit_exceeded"
    assert "2 requests per minute" in err["message"] and "rpm_limit" in err["message"]
    stream = chat(c, key, stream=True)
    assert stream.status_code == 429
    assert upstream_calls(sim) == calls  # nothing reached the upstream
    assert gateway.nanos(credit_id) == balance  # nothing held, nothing charged
    # the account's other keys are not limited by this one's
    _, default_key = credit_id, c.get("/keys", headers=hdr(credit_id), params={"show_key": "1"})
    other = next(k for k in default_key.json()["data"] if k["name"] == "default")["api_key"]
    assert chat(c, other).status_code == 200


def test_the_openai_sdk_reads_the_429_as_a_rate_limit(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 1)
    key = make_key(c, credit_id, rpm_limit=1)["api_key"]
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)
    client.chat.completions.create(model="test-model", messages=PROMPT, max_tokens=5)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="test-model", messages=PROMPT, max_tokens=5)  # type: ignore[arg-type]
    assert caught.value.response.headers["retry-after"].isdigit()


def test_messages_429_in_anthropics_envelope(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 1)
    key = make_key(c, credit_id, rpm_limit=1)["api_key"]
    assert messages(c, key).status_code == 200
    before = gateway.nanos(credit_id)
    r = messages(c, key)
    assert r.status_code == 429, r.text
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert int(r.headers["retry-after"]) >= 1
    assert gateway.nanos(credit_id) == before
    client = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="claude-test", max_tokens=5, messages=PROMPT)  # type: ignore[arg-type]


def test_tokens_settled_count_toward_tpm_limit(gateway: Gateway, c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 1)
    key = make_key(c, credit_id, tpm_limit=25)["api_key"]
    first = chat(c, key)
    assert first.status_code == 200  # nothing settled yet in this minute: admitted
    used = first.json()["usage"]
    assert used["prompt_tokens"] + used["completion_tokens"] >= 25
    gateway.loop.run(gateway.services.limits.gate.drain())  # its count is written
    before = gateway.nanos(credit_id)
    r = chat(c, key)
    assert r.status_code == 429, r.text
    assert "25 tokens per minute" in r.json()["error"]["message"]
    assert int(r.headers["retry-after"]) >= 1
    assert gateway.nanos(credit_id) == before


def test_model_outside_allowed_models_is_403_before_any_hold(
    gateway: Gateway, c: httpx.Client, sim: SimServer
) -> None:
    credit_id, _ = new_account(c, 1)
    key = make_key(c, credit_id, allowed_models=["test-*", "claude-sonnet-5-5"])["api_key"]
    assert chat(c, key, "test-model").status_code == 200
    assert chat(c, key, "test-model:online").status_code == 200  # the web plugin, same model
    # an alias names its model: claude-sonnet-5-5 allows claude-test under either name
    assert messages(c, key, "claude-test").status_code == 200
    assert messages(c, key, "claude-sonnet-5-5").status_code == 200
    balance, calls = gateway.nanos(credit_id), upstream_calls(sim)
    r = chat(c, key, "pricey-model")
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["code"] == "model_not_allowed" and err["type"] == "permission_error"
    assert "pricey-model" in err["message"] and err["param"] == "model"
    assert chat(c, key, "web-model:online").status_code == 403
    assert chat(c, key, "free-model", stream=True).status_code == 403  # free models too
    m = messages(c, key, "claude-agent")
    assert m.status_code == 403 and m.json()["error"]["type"] == "permission_error"
    assert upstream_calls(sim) == calls
    assert gateway.nanos(credit_id) == balance


def test_a_patched_limit_applies_to_the_next_request(c: httpx.Client) -> None:
    credit_id, _ = new_account(c, 1)
    made = make_key(c, credit_id)
    key = made["api_key"]
    assert chat(c, key).status_code == 200
    r = c.patch(
        f"/keys/{made['_id']}", json={"allowed_models": ["nothing-*"]}, headers=hdr(credit_id)
    )
    assert r.status_code == 200
    assert chat(c, key).status_code == 403
    c.patch(f"/keys/{made['_id']}", json={"allowed_models": None}, headers=hdr(credit_id))
    assert chat(c, key).status_code == 200
