"""The simulated enclave's identity: a test root, a platform key, a code measurement, an HPKE key.

A real TEE's vendor root (AMD, Intel) certifies the chip's key and the chip signs a report of the
measured code and the key that code generated. Here a freshly generated Ed25519 *test root*
plays the vendor, so only a policy that names this root (the one `policy_json` writes) trusts
the simulator; the measurement is the SHA-256 of this package's enclave source.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from farebox.private.attestation import issue_bundle
from farebox.private.ehbp_seal import ServerKey
from farebox.private.policy import policy_json

SIMULATOR_WARNING = (
    "This policy trusts farebox's simulated enclave, whose test root key was generated on this "
    "machine: it proves nothing about privacy. Use it for demos and tests only."
)


def code_measurement() -> str:
    """The simulated enclave's "measured code": the SHA-256 of its source files."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in ("enclave.py", "enclave_identity.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


@dataclass
class EnclaveIdentity:
    root: Ed25519PrivateKey
    platform: Ed25519PrivateKey
    measurement: str
    key: ServerKey
    _bundles: dict[str, bytes] = field(default_factory=dict)

    @staticmethod
    def generate(
        measurement: str | None = None, root: Ed25519PrivateKey | None = None
    ) -> EnclaveIdentity:
        return EnclaveIdentity(
            root=root or Ed25519PrivateKey.generate(),
            platform=Ed25519PrivateKey.generate(),
            measurement=measurement or code_measurement(),
            key=ServerKey.generate(),
        )

    def bundle(self, domain: str) -> bytes:
        """The signed attestation bundle (kept until the key rotates, as a TEE's report is)."""
        cached = self._bundles.get(domain)
        if cached is None:
            cached = self._bundles[domain] = issue_bundle(
                root=self.root,
                platform=self.platform,
                measurement=self.measurement,
                key_config=self.key.config,
                domain=domain,
            )
        return cached

    def rotate(self) -> None:
        """A new HPKE key (key id + 1): requests sealed to the old one now get a 422."""
        self.key = ServerKey.generate((self.key.key_id + 1) % 256)
        self._bundles.clear()

    def root_public(self) -> bytes:
        return self.root.public_key().public_bytes_raw()

    def policy_json(self) -> bytes:
        """A policy trusting exactly this enclave's root and measurement."""
        return policy_json(
            [self.root_public()], [self.measurement], SIMULATOR_WARNING, simulator=True
        )
