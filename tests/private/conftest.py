"""Fixtures for the private-model tests: one simulated enclave and a gateway per database kind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from farebox.private.policy import Policy
from farebox.sim.config import SimConfig
from farebox.sim.enclave import RunningEnclave

from private_support import private_catalog, running_enclave
from support import DB_KINDS, Gateway, database_url, free_port, require_db, running_gateway


@pytest.fixture(scope="module")
def enclave() -> Iterator[RunningEnclave]:
    with running_enclave(SimConfig(seed=1)) as running:
        yield running


@pytest.fixture(scope="module")
def policy(enclave: RunningEnclave) -> Policy:
    return Policy.parse(enclave.identity.policy_json(), "the test enclave's policy")


@pytest.fixture(scope="module", params=DB_KINDS)
def private_gateway(
    request: pytest.FixtureRequest,
    enclave: RunningEnclave,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    require_db(request.param)
    dead = {"kind": "ehbp", "base_url": f"http://127.0.0.1:{free_port()}"}
    catalog = private_catalog(enclave.url, {"dead": dead})
    with (
        database_url(request.param, tmp_path_factory.mktemp("private")) as url,
        running_gateway(url, catalog) as gw,
    ):
        yield gw
