"""Fixtures: a fresh simulator on a free loopback port, and the official OpenAI SDK against it."""

from collections.abc import AsyncIterator

import pytest
from openai import AsyncOpenAI

from farebox.sim import SimConfig, SimServer, start_sim
from farebox.sim.tokens import Tokenizer

from sim_support import openai_client


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    server = await start_sim(SimConfig(seed=7))
    yield server
    await server.close()


@pytest.fixture
async def client(sim: SimServer) -> AsyncIterator[AsyncOpenAI]:
    sdk = openai_client(f"{sim.url}/v1")
    yield sdk
    await sdk.close()


@pytest.fixture(scope="session")
def tok() -> Tokenizer:
    return Tokenizer()
