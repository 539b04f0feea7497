"""What the private proxy trusts: root keys and code measurements, from the package or a file.

Never from the gateway: a proxy that took its policy from the server it talks through would
trust whatever enclave the operator put there.

    {"format": "farebox-enclave-policy/v1",
     "trusted_roots": ["<base64 Ed25519 public key>", ...],
     "measurements": ["<hex code measurement>", ...],
     "simulator": false, "description": "..."}
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from farebox import optional

if TYPE_CHECKING:  # cryptography is loaded when a policy is read (optional.py)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

POLICY_FORMAT = "farebox-enclave-policy/v1"
MAX_POLICY_BYTES = 256 * 1024
_HEX = re.compile(r"^[0-9a-f]{32,128}$")


class PolicyError(Exception):
    """The policy file is unreadable or malformed."""


@dataclass(frozen=True)
class Policy:
    trusted_roots: tuple[Ed25519PublicKey, ...]
    measurements: frozenset[str]
    simulator: bool
    description: str
    source: str

    @staticmethod
    def parse(raw: bytes, source: str) -> Policy:
        if len(raw) > MAX_POLICY_BYTES:
            raise PolicyError(f"{source}: the policy is over {MAX_POLICY_BYTES} bytes")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise PolicyError(f"{source}: not JSON ({exc})") from exc
        if not isinstance(data, dict) or data.get("format") != POLICY_FORMAT:
            raise PolicyError(f"{source}: not a {POLICY_FORMAT} policy")
        roots = data.get("trusted_roots")
        measurements = data.get("measurements")
        if not isinstance(roots, list) or not isinstance(measurements, list):
            raise PolicyError(f"{source}: trusted_roots and measurements must be lists")
        keys = []
        for i, root in enumerate(roots):
            try:
                keys.append(
                    optional.ed25519().Ed25519PublicKey.from_public_bytes(
                        base64.b64decode(str(root), validate=True)
                    )
                )
            except (binascii.Error, ValueError) as exc:
                raise PolicyError(f"{source}: trusted_roots[{i}] is not an Ed25519 key") from exc
        wanted = set()
        for i, value in enumerate(measurements):
            if not isinstance(value, str) or not _HEX.match(value.lower()):
                raise PolicyError(f"{source}: measurements[{i}] is not a hex measurement")
            wanted.add(value.lower())
        description = data.get("description")
        return Policy(
            trusted_roots=tuple(keys),
            measurements=frozenset(wanted),
            simulator=data.get("simulator") is True,
            description=description if isinstance(description, str) else "",
            source=source,
        )

    @staticmethod
    def load(path: Path) -> Policy:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise PolicyError(f"{path}: cannot read the policy file ({exc.strerror})") from exc
        return Policy.parse(raw, str(path))

    @staticmethod
    def packaged() -> Policy:
        """The policy shipped inside farebox (`farebox/private/policy.json`)."""
        raw = resources.files("farebox.private").joinpath("policy.json").read_bytes()
        return Policy.parse(raw, "the policy shipped with farebox")

    @property
    def trusts_anything(self) -> bool:
        return bool(self.trusted_roots and self.measurements)


def policy_json(
    roots: list[bytes], measurements: list[str], description: str, simulator: bool
) -> bytes:
    """A policy file's bytes (the demo writes the simulator's with this)."""
    return orjson.dumps(
        {
            "format": POLICY_FORMAT,
            "description": description,
            "simulator": simulator,
            "trusted_roots": [base64.b64encode(r).decode() for r in roots],
            "measurements": measurements,
        },
        option=orjson.OPT_INDENT_2,
    )
