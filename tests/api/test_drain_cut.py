"""The drain's two effects inside the app (net/drain.py; the SIGTERM sequence itself runs real
processes in tests/replicas/test_drain.py): /readyz answers 503 once draining begins, and the
deadline's cut ends a running stream with an error event, the usage and [DONE], billed exactly
the input and the output delivered, with nothing left held."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from farebox.billing.tokens import count_text, encoder
from farebox.catalog.loader import catalog_from_dict
from farebox.sim.server import SimServer

from support import NANOS, TEST_PRICE, Gateway, database_url, require_db, running_gateway

ENC = encoder("o200k_base")


@pytest.fixture(params=["sqlite", "postgresql"])
def slow_gateway(
    request: pytest.FixtureRequest, sim: SimServer, tmp_path: Path
) -> Iterator[Gateway]:
    require_db(request.param)
    catalog = catalog_from_dict(
        {
            "providers": {
                "slow": {
                    "kind": "openai",
                    "base_url": f"{sim.url}/sim/tps=50,output_tokens=2000/v1",
                    "api_key_env": "SIM_KEY",
                }
            },
            "models": {
                "slow-model": {
                    "provider": "Test",
                    "type": "chat",
                    "context": 100_000,
                    "max_output": 4096,
                    "date_added": "2026-01-01",
                    "price": TEST_PRICE,
                    "all_output_visible": True,
                    "routes": [{"provider": "slow", "model": "sim-chat"}],
                }
            },
        },
        env={"SIM_KEY": "k"},
    )
    with database_url(request.param, tmp_path) as url, running_gateway(url, catalog) as gw:
        yield gw


def test_draining_readyz_503_and_the_cut_settles_what_was_delivered(
    slow_gateway: Gateway,
) -> None:
    gw = slow_gateway
    credit_id, key = gw.create_account(1)
    with gw.client() as client:
        assert client.get("/readyz").status_code == 200
        body = {
            "model": "slow-model",
            "messages": [{"role": "user", "content": "go on"}],
            "stream": True,
            "max_tokens": 2000,
        }
        events: list[dict[str, object] | str] = []
        text = ""
        started = threading.Event()
        with client.stream(
            "POST",
            "/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
        ) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if not line.startswith("data: "):
                    continue
                payload = line[6:]
                if payload == "[DONE]":
                    events.append("[DONE]")
                    continue
                obj = json.loads(payload, parse_float=Decimal)
                events.append(obj)
                for choice in obj.get("choices") or ():
                    text += (choice.get("delta") or {}).get("content") or ""
                if text and not started.is_set():
                    started.set()
                    assert gw.services.drain.running == 1
                    gw.services.drain.begin()
                    assert client.get("/readyz").json() == {"status": "draining"}
                    assert client.get("/readyz").status_code == 503
                    gw.loop.loop.call_soon_threadsafe(gw.services.drain.cut)
        assert events[-1] == "[DONE]"
        errors = [e for e in events if isinstance(e, dict) and "error" in e]
        assert len(errors) == 1 and errors[0]["error"]["code"] == "gateway_restarting"  # type: ignore[index]
        usage = next(e["usage"] for e in events if isinstance(e, dict) and e.get("usage"))
        assert isinstance(usage, dict)
        delivered = usage["completion_tokens"]
        assert 0 < delivered < 2000
        assert delivered == count_text(ENC, text)
        cost = int(Decimal(usage["cost"]) * NANOS)
        assert cost == usage["prompt_tokens"] * 1_000 + delivered * 2_000
    assert gw.services.drain.running == 0
    balance, reserved = gw.nanos(credit_id)
    assert reserved == 0 and balance == NANOS - cost
    assert gw.history_total_nanos(credit_id) == cost
    assert gw.check().ok
    with httpx.Client(base_url=gw.url, timeout=30) as fresh:  # a stream after the cut ends at once
        r = fresh.post(
            "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        )
        assert r.status_code == 200 and "gateway_restarting" in r.text
