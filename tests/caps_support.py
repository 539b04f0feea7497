"""Shared by the upstream-cap tests: a catalog of simulated reasoning upstreams on every route
kind, and checks that what an upstream could bill stayed within what was held for it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select

from farebox.billing.pricing import TokenUsage, usage_cost
from farebox.catalog.loader import catalog_from_dict
from farebox.catalog.model import Catalog, TokenPrices
from farebox.db.schema import operator_losses, queries, transfers
from farebox.ledger.types import PENDING
from farebox.sim.server import SimServer

from support import NANOS, Gateway, database_url, running_gateway

REASONING = 50_000
"""Hidden thinking tokens each simulated reasoning model wants (as in issue 11's report)."""
PRICE = TokenPrices(input=NANOS, output=2 * NANOS)  # $1 / $2 per 1M tokens
COST = TokenPrices(input=NANOS // 2, output=NANOS)  # what the upstream charges the operator
PRICES = {
    "price": {"input_per_1m": "1", "output_per_1m": "2"},
    "cost": {"input_per_1m": "0.5", "output_per_1m": "1"},
}
CHEAP = (TokenPrices(input=NANOS, output=NANOS // 20), TokenPrices(NANOS // 2, NANOS // 40))
"""cheap-reasoner's price and cost: output at $0.05 and $0.025 per 1M tokens."""
DEFAULT_MAX_TOKENS = 3000  # the gateway's FAREBOX_DEFAULT_MAX_TOKENS in these tests
SEARCH_RESULT_NANOS = 100_000  # $0.0001 per web search result


def caps_catalog(sim_url: str) -> Catalog:
    reason = f"{sim_url}/sim/reasoning_tokens={REASONING}"
    overbill = f"{reason},ignore_cap=true"
    key = {"api_key_env": "SIM_KEY"}
    base = {
        "provider": "Test",
        "type": "chat",
        "context": 200_000,
        "max_output": 100_000,
        "date_added": "2026-01-01",
        **PRICES,
    }
    return catalog_from_dict(
        {
            "providers": {
                # OpenAI-compatible reasoning upstreams, taking the cap in either field
                "reason": {"kind": "openai", "base_url": f"{reason}/v1", **key},
                "reason-mct": {
                    "kind": "openai",
                    "base_url": f"{reason}/v1",
                    "max_tokens_field": "max_completion_tokens",
                    **key,
                },
                # Anthropic's Messages API, thinking hidden
                "reason-anthropic": {"kind": "anthropic", "base_url": f"{reason}/v1", **key},
                # upstreams that ignore the cap they are sent and bill all their thinking
                "overbill": {"kind": "openai", "base_url": f"{overbill}/v1", **key},
                "overbill-anthropic": {"kind": "anthropic", "base_url": f"{overbill}/v1", **key},
                "plain": {"kind": "openai", "base_url": f"{sim_url}/v1", **key},
                "search-exa": {"kind": "exa", "base_url": f"{sim_url}/exa", **key},
            },
            "models": {
                "reasoner": {
                    **base,
                    "routes": [{"provider": "reason", "model": "o-sim"}],
                    "unit_prices": {"web_search_result": "0.0001"},
                },
                "reasoner-mct": {**base, "routes": [{"provider": "reason-mct", "model": "o-sim"}]},
                "claude-reasoner": {
                    **base,
                    "routes": [{"provider": "reason-anthropic", "model": "claude-sim"}],
                },
                "short-reasoner": {
                    **base,
                    "max_output": 1000,
                    "routes": [{"provider": "reason", "model": "o-sim"}],
                },
                "overbilled": {**base, "routes": [{"provider": "overbill", "model": "o-sim"}]},
                "overbilled-claude": {
                    **base,
                    "routes": [{"provider": "overbill-anthropic", "model": "claude-sim"}],
                },
                "overbilled-unknown-cost": {
                    **{k: v for k, v in base.items() if k != "cost"},
                    "routes": [{"provider": "overbill", "model": "o-sim"}],
                },
                "plain": {
                    **base,
                    "all_output_visible": True,
                    "routes": [{"provider": "plain", "model": "sim-chat"}],
                },
                # item 8's mix: output at $0.05 per 1M, so 200 default holds fit in $0.05
                "cheap-reasoner": {
                    **base,
                    "max_output": 128_000,
                    "price": {"input_per_1m": "1", "output_per_1m": "0.05"},
                    "cost": {"input_per_1m": "0.5", "output_per_1m": "0.025"},
                    "routes": [{"provider": "reason", "model": "o-sim"}],
                },
            },
        },
        env={"SIM_KEY": "sim-upstream-key"},
    )


@contextmanager
def caps_gateway(kind: str, sim: SimServer, tmp: Path) -> Iterator[Gateway]:
    with (
        database_url(kind, tmp) as url,
        running_gateway(url, caps_catalog(sim.url), default_max_tokens=DEFAULT_MAX_TOKENS) as gw,
    ):
        yield gw


CHAT_ENDPOINTS = frozenset({"chat.completions", "messages"})
_MARK = re.compile(rb"capmark[0-9a-f]{16}")


def marker() -> str:
    """A word no other request carries, to find a request's upstream call in the simulator."""
    return "capmark" + uuid.uuid4().hex[:16]


def upstream_bodies(sim: SimServer) -> dict[str, dict[str, Any]]:
    """Every chat request body the simulator kept, by the marker its prompt carries (the search
    and data calls it also keeps are left out: a search query carries the prompt's marker too)."""
    found: dict[str, dict[str, Any]] = {}
    for endpoint, body in sim.state.received:
        if endpoint not in CHAT_ENDPOINTS:
            continue
        marks = set(_MARK.findall(orjson.dumps(body)))
        for mark in marks:
            assert mark.decode() not in found, f"two upstream calls carry {mark!r}"
            found[mark.decode()] = body
    return found


def upstream_body(sim: SimServer, mark: str) -> dict[str, Any]:
    """The request body the simulator received for the request whose prompt carries `mark`."""
    return upstream_bodies(sim)[mark]


def sent_cap(body: dict[str, Any]) -> int:
    cap = body.get("max_completion_tokens", body.get("max_tokens"))
    assert isinstance(cap, int), f"the upstream was sent no token cap: {sorted(body)}"
    return cap


@dataclass(frozen=True)
class Settled:
    held: int  # every hold the request took
    charged: int
    input_tokens: int  # as the upstream reported them
    output_tokens: int
    loss_rows: int


def settled_request(gw: Gateway, request_id: str) -> Settled:
    gw.loop.run(gw.services.ledger.flush())

    def read(conn: Any) -> Settled:
        held = conn.execute(
            select(func.coalesce(func.sum(transfers.c.amount), 0))
            .where(transfers.c.ref == request_id)
            .where(transfers.c.flags == PENDING)
        ).scalar_one()
        row = conn.execute(select(queries).where(queries.c.request_id == request_id)).one()
        losses = conn.execute(
            select(func.count())
            .select_from(operator_losses)
            .where(operator_losses.c.request_id == request_id)
        ).scalar_one()
        return Settled(int(held), int(row.price), row.input_count, row.output_count, losses)

    result: Settled = gw.services.db.read_sync(read)
    return result


def assert_bounded_by_hold(
    gw: Gateway,
    body: dict[str, Any],
    request_id: str,
    extra: int = 0,
    prices: tuple[TokenPrices, TokenPrices] = (PRICE, COST),
) -> Settled:
    """The upstream was sent (`body`) a cap whose whole cost was held; it billed within that
    cap; the customer was charged all it billed (`extra`: the web search's cost), so the operator
    lost nothing and paid the upstream less than it charged."""
    price, cost = prices
    cap = sent_cap(body)
    s = settled_request(gw, request_id)
    assert s.output_tokens <= cap
    # the most the upstream could bill for this call, at the sale price, was held before it
    assert usage_cost(price, TokenUsage(s.input_tokens, cap)) + extra <= s.held
    billed = TokenUsage(s.input_tokens, s.output_tokens)
    assert s.charged == usage_cost(price, billed) + extra  # charged in full
    assert usage_cost(cost, billed) <= s.charged
    assert s.loss_rows == 0
    return s
