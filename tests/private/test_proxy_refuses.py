"""The private proxy sends nothing to an enclave it cannot verify, and says why.

The gateway's operator controls everything between the proxy and the enclave; each case puts
something of theirs there (an altered bundle, a swapped key, an enclave of another root or
code) and checks that no request reaches the enclave and no money moves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from openai import APIStatusError, OpenAI

from farebox.private.policy import Policy, policy_json
from farebox.sim.enclave import RunningEnclave
from farebox.sim.enclave_identity import EnclaveIdentity

from private_support import (
    PRIVATE_MODEL,
    private_catalog,
    running_interposer,
    running_proxy,
)
from support import Gateway, database_url, running_gateway


@pytest.fixture
def gateway_through(tmp_path: Path) -> Iterator[Callable[[str], Gateway]]:
    """Makes a gateway (SQLite) whose enclave provider is the given URL."""
    with ExitStack() as stack:

        def make(url: str) -> Gateway:
            db_url = stack.enter_context(database_url("sqlite", tmp_path))
            return stack.enter_context(running_gateway(db_url, private_catalog(url)))

        yield make


def _refused(gw: Gateway, enclave: RunningEnclave, policy: Policy, reason: str) -> None:
    credit_id, api_key = gw.create_account(1)
    asked = httpx.get(enclave.url + "/sim/enclave/stats").json()["chat_requests"]
    with running_proxy(gw.url, api_key, policy) as proxy:
        health = proxy.health()
        assert health["attested"] is False and reason in health["reason"]
        client = OpenAI(base_url=proxy.url + "/v1", api_key="unused", max_retries=0)
        with pytest.raises(APIStatusError) as refused:
            client.chat.completions.create(
                model=PRIVATE_MODEL, messages=[{"role": "user", "content": "my secret"}]
            )
    assert refused.value.status_code == 503
    body = refused.value.body
    assert isinstance(body, dict) and body["code"] == "attestation_failed"
    assert reason in body["message"] and "nothing was sent" in body["message"]
    assert httpx.get(enclave.url + "/sim/enclave/stats").json()["chat_requests"] == asked
    assert gw.nanos(credit_id) == (1_000_000_000, 0)


def test_an_altered_bundle_is_refused(
    enclave: RunningEnclave, policy: Policy, gateway_through: Callable[[str], Gateway]
) -> None:
    with running_interposer(enclave.url, "tamper") as url:
        _refused(gateway_through(url), enclave, policy, "altered")


def test_a_swapped_key_is_refused(
    enclave: RunningEnclave, policy: Policy, gateway_through: Callable[[str], Gateway]
) -> None:
    with running_interposer(enclave.url, "swap") as url:
        _refused(gateway_through(url), enclave, policy, "swapped")


def test_code_the_policy_does_not_list_is_refused(
    enclave: RunningEnclave, gateway_through: Callable[[str], Gateway]
) -> None:
    identity = enclave.identity
    other_code = Policy.parse(
        policy_json([identity.root_public()], ["ab" * 32], "other code", simulator=True), "p"
    )
    _refused(gateway_through(enclave.url), enclave, other_code, "does not allow")


def test_an_enclave_of_another_root_is_refused(
    enclave: RunningEnclave, gateway_through: Callable[[str], Gateway]
) -> None:
    stranger = Policy.parse(EnclaveIdentity.generate().policy_json(), "another root's policy")
    _refused(gateway_through(enclave.url), enclave, stranger, "root this proxy trusts")


def test_the_shipped_policy_sends_nothing(
    enclave: RunningEnclave, gateway_through: Callable[[str], Gateway]
) -> None:
    _refused(gateway_through(enclave.url), enclave, Policy.packaged(), "trusts no enclave")
