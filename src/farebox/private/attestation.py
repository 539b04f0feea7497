"""farebox's attestation document: what binds an enclave's HPKE key to the code it runs.

A bundle (served by the enclave, relayed unchanged at `GET /private/attestation`) is JSON:

    {"format": "farebox-attestation/v1", "domain": "<enclave host>",
     "platform": {"public_key": b64, "signature": b64},   # the root endorses the platform key
     "report": b64(JSON), "signature": b64}               # the platform key signs the report
    report = {"measurement": hex, "hpke_key_config": b64, "platform": str, "issued_at": int}

The chain has the shape of a TEE's (a vendor root certifies the chip's key, the chip signs a
report of the code's measurement and the key the code generated), with Ed25519 for both links.
`verify_bundle` checks the chain up to a root the *policy* trusts, the measurement against the
policy's list, and that the key served at /.well-known/hpke-keys is the one the report binds.
The simulator's enclave signs with a test root (farebox.sim.enclave); no real hardware produces
this format, and real Tinfoil bundles (SEV-SNP/TDX reports, Sigstore provenance) are not
verified here: see the README's "Private models".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from farebox import optional
from farebox.private.ehbp import EhbpError, KeyConfig
from farebox.private.policy import Policy

FORMAT = "farebox-attestation/v1"
ENDORSEMENT_CONTEXT = b"farebox-attestation/v1 platform key\n"
REPORT_CONTEXT = b"farebox-attestation/v1 report\n"
MAX_BUNDLE_BYTES = 64 * 1024

if TYPE_CHECKING:  # cryptography is loaded when a bundle is first verified (optional.py)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )


class AttestationError(Exception):
    """The enclave could not be verified; the message says why, for the person running the proxy."""


@dataclass(frozen=True, slots=True)
class VerifiedEnclave:
    """What a verified bundle proves (under its policy's trust root)."""

    measurement: str
    key_config: KeyConfig
    fingerprint: str
    domain: str
    issued_at: int


def fingerprint(bundle: bytes) -> str:
    """The SHA-256 of the bundle's bytes as served: recorded with each private query, shown by
    the private proxy, so a user can match their history to what they verified."""
    return hashlib.sha256(bundle).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise AttestationError(f"the attestation bundle's {what} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AttestationError(f"the attestation bundle's {what} is not base64") from exc


def issue_bundle(
    *,
    root: Ed25519PrivateKey,
    platform: Ed25519PrivateKey,
    measurement: str,
    key_config: KeyConfig,
    domain: str,
    platform_name: str = "farebox-sim",
    issued_at: int | None = None,
) -> bytes:
    """A signed bundle (the simulator's enclave makes its own with this)."""
    platform_public = platform.public_key().public_bytes_raw()
    report = orjson.dumps(
        {
            "measurement": measurement,
            "hpke_key_config": _b64(key_config.encode()),
            "platform": platform_name,
            "issued_at": int(time.time()) if issued_at is None else issued_at,
        }
    )
    return orjson.dumps(
        {
            "format": FORMAT,
            "domain": domain,
            "platform": {
                "public_key": _b64(platform_public),
                "signature": _b64(root.sign(ENDORSEMENT_CONTEXT + platform_public)),
            },
            "report": _b64(report),
            "signature": _b64(platform.sign(REPORT_CONTEXT + report)),
        }
    )


def _parse(bundle: bytes) -> dict[str, Any]:
    if len(bundle) > MAX_BUNDLE_BYTES:
        raise AttestationError(f"the attestation bundle is over {MAX_BUNDLE_BYTES} bytes")
    try:
        data = orjson.loads(bundle)
    except orjson.JSONDecodeError as exc:
        raise AttestationError("the attestation bundle is not JSON") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise AttestationError(
            f"the attestation bundle is not in the {FORMAT} format this proxy verifies"
        )
    return data


def _endorsed_platform(data: dict[str, Any], policy: Policy) -> Ed25519PublicKey:
    platform = data.get("platform")
    if not isinstance(platform, dict):
        raise AttestationError("the attestation bundle has no platform endorsement")
    public = _unb64(platform.get("public_key"), "platform key")
    signature = _unb64(platform.get("signature"), "platform endorsement")
    for root in policy.trusted_roots:
        try:
            root.verify(signature, ENDORSEMENT_CONTEXT + public)
        except optional.crypto_exceptions().InvalidSignature:
            continue
        try:
            key: Ed25519PublicKey = optional.ed25519().Ed25519PublicKey.from_public_bytes(public)
            return key
        except ValueError as exc:
            raise AttestationError("the platform key is not an Ed25519 key") from exc
    raise AttestationError(
        "the attestation's signature chain does not lead to a root this proxy trusts "
        f"(policy {policy.source}): the enclave is not one the policy vouches for"
    )


def verify_bundle(bundle: bytes, served_key_config: bytes, policy: Policy) -> VerifiedEnclave:
    """Check the chain to a trusted root, the measurement, and that the served key is bound.

    Raises AttestationError saying which check failed.
    """
    data = _parse(bundle)
    platform = _endorsed_platform(data, policy)
    report = _unb64(data.get("report"), "report")
    try:
        platform.verify(_unb64(data.get("signature"), "report signature"), REPORT_CONTEXT + report)
    except optional.crypto_exceptions().InvalidSignature as exc:
        raise AttestationError(
            "the attestation report's signature is invalid: the bundle was altered"
        ) from exc
    try:
        fields = orjson.loads(report)
    except orjson.JSONDecodeError as exc:
        raise AttestationError("the signed report is not JSON") from exc
    measurement = fields.get("measurement") if isinstance(fields, dict) else None
    if not isinstance(measurement, str):
        raise AttestationError("the signed report has no code measurement")
    if measurement.lower() not in policy.measurements:
        raise AttestationError(
            f"the enclave runs code measurement {measurement[:16]}…, which the policy "
            f"({policy.source}) does not allow"
        )
    try:
        bound = KeyConfig.parse(_unb64(fields.get("hpke_key_config"), "bound HPKE key"))
        served = KeyConfig.parse(served_key_config)
    except EhbpError as exc:
        raise AttestationError(f"unreadable HPKE key config: {exc}") from exc
    if bound.public_key != served.public_key:
        raise AttestationError(
            "the HPKE key served at /.well-known/hpke-keys is not the key the attestation "
            "binds: someone between you and the enclave swapped it"
        )
    issued = fields.get("issued_at")
    domain = data.get("domain")
    return VerifiedEnclave(
        measurement=measurement.lower(),
        key_config=bound,
        fingerprint=fingerprint(bundle),
        domain=domain if isinstance(domain, str) else "",
        issued_at=issued if isinstance(issued, int) else 0,
    )
