"""A gateway whose models have flaky, hanging, slow and dead routes, with a quick routing policy.

Each gateway gets simulator URL prefixes of its own (a distinct no-op `latency_ms` value), so the
simulator's per-prefix counters (and `fail_first`) are its alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from farebox.catalog.loader import catalog_from_dict
from farebox.catalog.model import Catalog
from farebox.sim.server import SimServer

from support import (
    TEST_PRICE,
    Gateway,
    database_url,
    free_port,
    require_db,
    running_gateway,
)

POLICY_ENV = {
    "FAREBOX_ROUTE_RETRIES": "1",
    "FAREBOX_ROUTE_BACKOFF_S": "0.01",
    "FAREBOX_ROUTE_FAILURES_TO_OPEN": "2",
    # long enough that a loaded machine cannot outlast it between two requests of one test
    "FAREBOX_ROUTE_COOLDOWN_S": "1.5",
}


@dataclass
class Routes:
    """The gateway and the simulator prefix each provider of its catalog uses."""

    gateway: Gateway
    sim: SimServer
    prefixes: dict[str, str]

    def hits(self, provider: str) -> int:
        """Requests the simulator got through this provider's prefix."""
        counts = self.sim.state.stats.snapshot()["by_prefix"]
        assert isinstance(counts, dict)
        return int(counts.get(self.prefixes[provider], 0))


def routing_catalog(sim_url: str, prefixes: dict[str, str]) -> Catalog:
    base = {
        "provider": "Test",
        "type": "chat",
        "context": 100_000,
        "max_output": 4096,
        "date_added": "2026-01-01",
        "price": TEST_PRICE,
    }
    providers = {
        name: {"kind": "openai", "base_url": f"{sim_url}/sim/{prefix}/v1", "api_key_env": "K"}
        for name, prefix in prefixes.items()
    }
    providers["hang"]["first_byte_timeout_s"] = 0.3
    providers["slow"]["idle_timeout_s"] = 0.3
    providers["dead"] = {"kind": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1"}

    def model(*providers: str) -> dict[str, object]:
        return {**base, "routes": [{"provider": p, "model": "sim-chat"} for p in providers]}

    return catalog_from_dict(
        {
            "providers": providers,
            "models": {
                "flaky-model": model("flaky", "ok"),
                "hang-model": model("hang", "ok"),
                "slow-model": model("slow"),
                "retry-model": model("retry"),
                "down-model": model("down503", "dead"),
                "cut-model": model("cut", "ok"),
                # one dead route each, with breakers of their own (keyed by upstream model)
                **{
                    f"dead-{n}": {**base, "routes": [{"provider": "dead", "model": f"m-{n}"}]}
                    for n in range(4)
                },
            },
        },
        env={"K": "sim-upstream-key"},
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def routes(
    request: pytest.FixtureRequest, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Routes]:
    require_db(request.param)
    nonce = f"0.{uuid.uuid4().int % 10**9:09d}"  # a no-op latency_ms, unique to this gateway
    faults = {
        "ok": "",
        "flaky": "fail_first=3",
        "hang": "hang_ms=3000",
        "slow": "tps=2",
        "retry": "fail_first=1",
        "down503": "status=503",
        "cut": "disconnect_after=3",
    }
    prefixes = {
        name: ",".join(filter(None, (fault, f"latency_ms={nonce}")))
        for name, fault in faults.items()
    }
    tmp = tmp_path_factory.mktemp("routing")
    with (
        database_url(request.param, tmp) as url,
        running_gateway(url, routing_catalog(sim.url, prefixes), extra_env=POLICY_ENV) as gw,
    ):
        yield Routes(gw, sim, prefixes)
