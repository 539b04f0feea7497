"""Everything one simulator app holds, reachable from handlers as `request.app[SIM_STATE]`."""

from __future__ import annotations

import itertools
import random
from collections import deque
from typing import Any

from aiohttp import web

from farebox.sim.config import SimConfig
from farebox.sim.stats import SimStats
from farebox.sim.textgen import TextGen
from farebox.sim.tokens import Tokenizer

RECEIVED_BODIES = 4096
"""How many request bodies a simulator keeps (enough for a 200-request test, and small)."""


class SimState:
    """Config, counters, the random source for `fault_rate`, the tokenizer and id sequence, and
    the last request bodies received with their X-Request-Id headers (`GET /sim/requests`,
    for tests that check what an upstream was sent): chat and messages calls by their
    endpoint, search and data calls (kept by sim/admission.py) by theirs."""

    __slots__ = (
        "_ids",
        "config",
        "received",
        "request_ids",
        "rng",
        "stats",
        "textgen",
        "tokenizer",
    )

    def __init__(self, config: SimConfig, tokenizer: Tokenizer | None = None) -> None:
        self.config = config
        self.stats = SimStats()
        self.rng = random.Random(config.seed)
        self.tokenizer = tokenizer or Tokenizer()
        self.textgen = TextGen(self.tokenizer)
        self._ids = itertools.count(1)
        self.received: deque[tuple[str, dict[str, Any]]] = deque(maxlen=RECEIVED_BODIES)
        self.request_ids: deque[str | None] = deque(maxlen=RECEIVED_BODIES)  # beside `received`

    def receive(self, endpoint: str, body: dict[str, Any], request_id: str | None = None) -> None:
        """Keep a request's body and X-Request-Id (the last RECEIVED_BODIES of them)."""
        self.received.append((endpoint, body))
        self.request_ids.append(request_id)

    def next_id(self) -> int:
        """A number unique within this simulator, for response and tool-call ids."""
        return next(self._ids)


SIM_STATE = web.AppKey("farebox_sim_state", SimState)
