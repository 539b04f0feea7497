"""The attestation check the private proxy makes: chain to a trusted root, measurement, key."""

from __future__ import annotations

import base64

import orjson
import pytest

from farebox.private.attestation import AttestationError, fingerprint, verify_bundle
from farebox.private.ehbp_seal import ServerKey
from farebox.private.policy import Policy, PolicyError, policy_json
from farebox.sim.enclave_identity import EnclaveIdentity, code_measurement


def _policy(identity: EnclaveIdentity) -> Policy:
    return Policy.parse(identity.policy_json(), "test policy")


def test_a_genuine_bundle_verifies_and_pins_the_bound_key() -> None:
    identity = EnclaveIdentity.generate()
    bundle = identity.bundle("enclave.test")
    verified = verify_bundle(bundle, identity.key.config.encode(), _policy(identity))
    assert verified.key_config == identity.key.config
    assert verified.measurement == identity.measurement == code_measurement()
    assert verified.fingerprint == fingerprint(bundle)
    assert verified.domain == "enclave.test"


def test_a_tampered_report_is_refused() -> None:
    identity = EnclaveIdentity.generate()
    data = orjson.loads(identity.bundle("enclave.test"))
    report = orjson.loads(base64.b64decode(data["report"]))
    report["measurement"] = "00" * 32  # claim other code, keep the signature
    data["report"] = base64.b64encode(orjson.dumps(report)).decode()
    with pytest.raises(AttestationError, match="altered"):
        verify_bundle(orjson.dumps(data), identity.key.config.encode(), _policy(identity))


def test_a_bundle_signed_by_an_untrusted_root_is_refused() -> None:
    genuine, impostor = EnclaveIdentity.generate(), EnclaveIdentity.generate()
    bundle = impostor.bundle("enclave.test")  # same code, another root
    with pytest.raises(AttestationError, match="root this proxy trusts"):
        verify_bundle(bundle, impostor.key.config.encode(), _policy(genuine))


def test_a_measurement_the_policy_does_not_list_is_refused() -> None:
    identity = EnclaveIdentity.generate(measurement="ab" * 32)
    policy = Policy.parse(
        policy_json([identity.root_public()], ["cd" * 32], "other code", simulator=True), "p"
    )
    with pytest.raises(AttestationError, match="does not allow"):
        verify_bundle(identity.bundle("e"), identity.key.config.encode(), policy)


def test_a_served_key_other_than_the_bound_one_is_refused() -> None:
    identity = EnclaveIdentity.generate()
    swapped = ServerKey.generate().config.encode()
    with pytest.raises(AttestationError, match="swapped"):
        verify_bundle(identity.bundle("e"), swapped, _policy(identity))


def test_the_shipped_policy_trusts_no_enclave() -> None:
    policy = Policy.packaged()
    assert not policy.trusts_anything
    identity = EnclaveIdentity.generate()
    with pytest.raises(AttestationError, match="root this proxy trusts"):
        verify_bundle(identity.bundle("e"), identity.key.config.encode(), policy)


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'{"format": "something-else"}',
        b'{"format": "farebox-enclave-policy/v1", "trusted_roots": ["!!"], "measurements": []}',
        b'{"format": "farebox-enclave-policy/v1", "trusted_roots": [], "measurements": ["xyz"]}',
    ],
)
def test_a_malformed_policy_is_refused_with_its_source(raw: bytes) -> None:
    with pytest.raises(PolicyError, match=r"policy\.json"):
        Policy.parse(raw, "policy.json")
