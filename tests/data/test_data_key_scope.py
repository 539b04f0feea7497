"""Data endpoints admit keys like models do: allowed_models matches the endpoint's id (patterns
too), and rpm_limit counts data calls; a refused call holds nothing and calls no provider."""

from __future__ import annotations

from typing import Any

from data_support import SAMPLES, call, upstream_requests
from support import Gateway

TEXT_SEARCH = "google-maps/text-search/full"


def key_with(gw: Gateway, **limits: Any) -> tuple[str, str]:
    credit_id, _ = gw.create_account(1)
    with gw.client() as c:
        r = c.post("/keys", json={"name": "scoped", **limits}, headers={"x-credit-id": credit_id})
        assert r.status_code == 201, r.text
        return credit_id, r.json()["data"]["api_key"]


def test_data_endpoints_outside_the_scope_are_403(data_gw: Gateway, sim: Any) -> None:
    credit_id, key = key_with(data_gw, allowed_models=["google-maps/text-search/*"])
    assert call(data_gw, key, TEXT_SEARCH, SAMPLES[TEXT_SEARCH][0]).status_code == 200
    other = next(e for e in sorted(SAMPLES) if not e.startswith("google-maps/text-search/"))
    before, calls = data_gw.nanos(credit_id), upstream_requests(sim)
    r = call(data_gw, key, other, SAMPLES[other][0])
    assert r.status_code == 403 and r.json()["error"]["code"] == "model_not_allowed"
    assert data_gw.nanos(credit_id) == before and upstream_requests(sim) == calls


def test_rpm_limit_counts_data_calls(data_gw: Gateway) -> None:
    credit_id, key = key_with(data_gw, rpm_limit=1)
    params = SAMPLES[TEXT_SEARCH][0]
    assert call(data_gw, key, TEXT_SEARCH, params).status_code == 200
    before = data_gw.nanos(credit_id)
    r = call(data_gw, key, TEXT_SEARCH, params)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert data_gw.nanos(credit_id) == before
