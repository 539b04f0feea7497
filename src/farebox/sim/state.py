"""Everything one simulator app holds, reachable from handlers as `request.app[SIM_STATE]`."""

from __future__ import annotations

import itertools
import random

from aiohttp import web

from farebox.sim.config import SimConfig
from farebox.sim.stats import SimStats
from farebox.sim.textgen import TextGen
from farebox.sim.tokens import Tokenizer


class SimState:
    """Config, counters, the random source for `fault_rate`, the tokenizer and id sequence."""

    __slots__ = ("_ids", "config", "rng", "stats", "textgen", "tokenizer")

    def __init__(self, config: SimConfig, tokenizer: Tokenizer | None = None) -> None:
        self.config = config
        self.stats = SimStats()
        self.rng = random.Random(config.seed)
        self.tokenizer = tokenizer or Tokenizer()
        self.textgen = TextGen(self.tokenizer)
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        """A number unique within this simulator, for response and tool-call ids."""
        return next(self._ids)


SIM_STATE = web.AppKey("farebox_sim_state", SimState)
