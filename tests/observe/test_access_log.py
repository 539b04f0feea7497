"""One access line per request: what it says, in text and JSON, never a secret; and the request
id, taken from the client when well formed, returned to it and sent to the upstream."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from farebox.observe import finished
from farebox.observe.request_id import accepted
from farebox.sim.server import SimServer

from observe_support import GatewayFactory
from support import new_account

CHAT = {"model": "test-model", "messages": [{"role": "user", "content": "a secret prompt"}]}


def _lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if "request_id=" in line or '"request_id"' in line]


def _fields(line: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in line.split()[1:])


def test_one_text_line_per_request_with_route_status_model_cost(
    make_gateway: GatewayFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    with make_gateway() as gw, gw.client() as c:
        credit_id, key = new_account(c, usd=1)
        r = c.post("/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200
        cost = r.headers["x-farebox-cost"]
        rid = r.headers["x-request-id"]
        c.get(f"/keys/{'k' * 20}", headers={"Authorization": f"Bearer {key}"})
        c.post("/credits/balance", json={"credit_id": credit_id})
        c.get(f"/queries/history?credit_id={credit_id}&api_key={key}")
        c.get("/no/such/path/sk-abc?sig=123")
    out = capsys.readouterr().out
    # The line is written once the response is sent: order them by request, not by arrival.
    lines = sorted(_lines(out), key=lambda line: _fields(line)["request_id"])
    assert len(lines) == 7, out  # create, grant, then the five above
    chat = _fields(lines[2])
    assert chat["request_id"] == rid and chat["method"] == "POST"
    assert chat["route"] == "/v1/chat/completions" and chat["status"] == "200"
    assert chat["model"] == "test-model" and chat["cost_usd"] == cost and cost != "0"
    assert float(chat["duration_ms"]) > 0 and float(chat["upstream_ms"]) > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", lines[2].split()[0])
    routes = [_fields(line)["route"] for line in lines[3:]]
    assert routes == ["/keys/{key_id}", "/credits/balance", "/queries/history", "unmatched"]
    assert _fields(lines[6])["status"] == "404" and _fields(lines[4])["model"] == "none"
    # Never the content, the key or the credit_id, whatever the request carried.
    for secret in (key, credit_id, "a secret prompt", "sk-abc", "sig=123"):
        assert secret not in out


def test_json_format_is_one_object_per_line(
    make_gateway: GatewayFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    with make_gateway(env={"FAREBOX_LOG_FORMAT": "json"}) as gw, gw.client() as c:
        credit_id, key = new_account(c, usd=1)
        r = c.post(
            "/v1/chat/completions",
            json={**CHAT, "stream": True},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 200
    out = capsys.readouterr().out
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(records) == 3  # create, grant, chat
    chat = next(rec for rec in records if rec["request_id"] == r.headers["x-request-id"])
    assert chat["event"] == "request" and chat["route"] == "/v1/chat/completions"
    assert chat["status"] == 200 and chat["model"] == "test-model"
    assert float(chat["cost_usd"]) > 0 and chat["ttfb_ms"] <= chat["duration_ms"]
    routes = {(rec["route"], rec["status"]) for rec in records}
    assert {("/admin/credits", 200), ("/accounts/create", 201)} < routes
    assert key not in out and credit_id not in out


@pytest.mark.parametrize("metrics", ["on", "off"])
def test_no_line_is_lost_when_the_gateway_stops(
    make_gateway: GatewayFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    metrics: str,
) -> None:
    # Lines wait up to FLUSH_S to be written in a batch: with a batch that never comes due,
    # every line is one the graceful stop wrote.
    monkeypatch.setattr(finished, "FLUSH_S", 3600.0)
    with make_gateway(env={"FAREBOX_METRICS": metrics}) as gw, gw.client() as c:
        assert _lines(capsys.readouterr().out) == []
        ids = [c.get("/healthz").headers["x-request-id"] for _ in range(50)]
    lines = _lines(capsys.readouterr().out)
    assert sorted(_fields(line)["request_id"] for line in lines) == sorted(ids)


def test_access_lines_can_be_turned_off(
    make_gateway: GatewayFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    with make_gateway(env={"FAREBOX_ACCESS_LOG": "off"}) as gw, gw.client() as c:
        assert c.get("/healthz").status_code == 200
    assert _lines(capsys.readouterr().out) == []


def test_request_id_round_trip_to_the_client_and_the_upstream(
    make_gateway: GatewayFactory, sim: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with make_gateway() as gw, gw.client() as c:
        _, key = new_account(c, usd=1)
        auth = {"Authorization": f"Bearer {key}"}
        given = "trace-7f3a.b:c/d@e+f=g"
        r = c.post("/v1/chat/completions", json=CHAT, headers={**auth, "X-Request-Id": given})
        assert r.status_code == 200 and r.headers["x-request-id"] == given
        assert _sim_request_ids(sim.url)[-1] == given
        # A stream, through the Anthropic front to an Anthropic upstream: the same id goes up.
        m = c.post(
            "/v1/messages",
            json={
                "model": "claude-test",
                "max_tokens": 20,
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            },
            headers={"x-api-key": key, "X-Request-Id": "messages-1"},
        )
        assert m.status_code == 200 and m.headers["x-request-id"] == "messages-1"
        assert _sim_request_ids(sim.url)[-1] == "messages-1"
        # Ill-formed ids are replaced by one of ours, which is returned and sent up instead.
        for bad in ("has space", "x" * 65, 'quote"d', "semi;colon", "ünï"):
            r = c.post(
                "/v1/chat/completions", json=CHAT, headers={**auth, "X-Request-Id": bad.encode()}
            )
            made = r.headers["x-request-id"]
            assert r.status_code == 200 and made != bad and made.startswith("req_")
            assert _sim_request_ids(sim.url)[-1] == made
        # Without one, every request gets its own.
        ids = {c.get("/healthz").headers["x-request-id"] for _ in range(5)}
        assert len(ids) == 5
    out = capsys.readouterr().out
    assert f"request_id={given} " in out and "has space" not in out


def _sim_request_ids(sim_url: str) -> list[str | None]:
    rows = httpx.get(f"{sim_url}/sim/requests?last=50", timeout=10).json()["data"]
    return [row["request_id"] for row in rows]


def test_well_formed_request_ids() -> None:
    assert accepted(b"abc-123_X.y:z") == "abc-123_X.y:z"
    assert accepted(b"a" * 64) == "a" * 64
    for bad in (b"", b"a" * 65, b"a b", b"a\nb", b"a\x00", b"<script>", b"a,b", "é".encode()):
        assert accepted(bad) is None
