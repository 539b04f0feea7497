"""The shared start of every simulated API call: waits and failures chosen by the faults."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from farebox.sim.config import SimConfig
from farebox.sim.faults import Faults
from farebox.sim.state import SimState


@dataclass(frozen=True, slots=True)
class Failure:
    """An error the simulator answers with instead of a result."""

    status: int
    message: str
    code: str


@dataclass(frozen=True, slots=True)
class Pace:
    """How fast a successful answer comes out, after the config's defaults and the faults."""

    ttft_s: float
    tokens_per_second: float

    def after_hidden(self, tokens: int) -> Pace:
        """The pace of a stream whose first `tokens` are generated but never sent (hidden
        reasoning): they take their time before the first token."""
        if not tokens or not self.tokens_per_second:
            return self
        return Pace(self.ttft_s + tokens / self.tokens_per_second, self.tokens_per_second)

    def body_delay_s(self, tokens: int) -> float:
        """Time a non-streamed answer of `tokens` takes after its headers would have gone."""
        gen = tokens / self.tokens_per_second if self.tokens_per_second else 0.0
        return self.ttft_s + gen


def pace(config: SimConfig, faults: Faults) -> Pace:
    """The output pace for one request."""
    ttft = config.ttft_ms if faults.ttft_ms is None else faults.ttft_ms
    tps = config.tokens_per_second if faults.tps is None else faults.tps
    return Pace(ttft / 1000.0, tps)


async def admit(state: SimState, faults: Faults, seen: int) -> Failure | None:
    """Hang and wait as asked, then decide whether this request fails.

    `seen` is how many requests the request's URL prefix has seen, this one included.
    `status` below 400 means no failure.
    """
    config = state.config
    if faults.hang_ms:
        await asyncio.sleep(faults.hang_ms / 1000.0)
    latency = config.latency_ms if faults.latency_ms is None else faults.latency_ms
    if latency:
        await asyncio.sleep(latency / 1000.0)
    status = faults.status if faults.status is not None and faults.status >= 400 else None
    if faults.fail_first is not None:
        if seen <= faults.fail_first:
            return Failure(
                status or 503,
                f"Simulated failure {seen} of the first {faults.fail_first} (sim fail_first).",
                "sim_fail_first",
            )
    elif status is not None:
        return Failure(status, f"Simulated upstream error {status} (sim status).", "sim_status")
    if config.fault_rate and state.rng.random() < config.fault_rate:
        return Failure(503, "Simulated random upstream failure (sim fault_rate).", "sim_fault_rate")
    return None
