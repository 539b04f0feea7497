"""What an upstream failure tells the customer: the route's name from the catalog, never its
address (issue 11: "cannot connect to 127.0.0.1:18199" reached customers). The operator still
sees the cause, in the log and in /admin/routes."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from routing_support import Routes

from support import ADMIN_TOKEN

HI = [{"role": "user", "content": "hi"}]


def dead_address(routes: Routes) -> tuple[str, str]:
    parts = urlsplit(routes.gateway.services.catalog.providers["dead"].base_url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, str(parts.port)


def assert_names_the_route_not_its_address(routes: Routes, r: httpx.Response) -> str:
    assert r.status_code in (502, 503), r.text
    host, port = dead_address(routes)
    assert host not in r.text and port not in r.text, r.text
    assert "dead" in r.text, r.text
    return r.text


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_chat_error_names_the_dead_route_not_its_address(routes: Routes, stream: bool) -> None:
    gw = routes.gateway
    credit_id, key = gw.create_account(1)
    with gw.client() as c:
        r = c.post(
            "/v1/chat/completions",
            json={"model": f"dead-{int(stream)}", "messages": HI, "stream": stream},
            headers={"Authorization": f"Bearer {key}"},
        )
    text = assert_names_the_route_not_its_address(routes, r)
    assert "could not be reached" in text and "Nothing was charged" in text
    assert gw.nanos(credit_id) == (10**9, 0)


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_anthropic_front_error_names_the_dead_route_not_its_address(
    routes: Routes, stream: bool
) -> None:
    gw = routes.gateway
    credit_id, key = gw.create_account(1)
    with gw.client() as c:
        r = c.post(
            "/v1/messages",
            json={
                "model": f"dead-{2 + int(stream)}",
                "max_tokens": 10,
                "messages": HI,
                "stream": stream,
            },
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        )
    assert_names_the_route_not_its_address(routes, r)
    assert r.json()["type"] == "error"
    assert gw.nanos(credit_id) == (10**9, 0)


def test_the_operator_still_sees_the_address_in_admin_routes(routes: Routes) -> None:
    gw = routes.gateway
    _credit_id, key = gw.create_account(1)
    with gw.client() as c:
        c.post(
            "/v1/chat/completions",
            json={"model": "dead-0", "messages": HI},
            headers={"Authorization": f"Bearer {key}"},
        )
        r = c.get("/admin/routes", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    (row,) = [
        x for x in r.json()["data"] if x["provider"] == "dead" and x["upstream_model"] == "m-0"
    ]
    host, port = dead_address(routes)
    assert f"{host}:{port}" in row["last_error"]
