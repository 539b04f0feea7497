"""EHBP's cryptography, at the ends: sealing a request to an enclave's key and opening it
(HPKE through pyhpke), and sealing and opening the response frames (AES-256-GCM under keys from
the request's HPKE context, SPEC §4.4). The private proxy and the simulator's enclave use it;
the gateway's relay only counts frames (private/ehbp.py) and never loads it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from farebox import optional
from farebox.private.ehbp import (
    ENC_LENGTH,
    EXPORT_LABEL,
    REQUEST_INFO,
    RESPONSE_NONCE_LENGTH,
    SEAL_FRAME_BYTES,
    EhbpError,
    FrameReader,
    KeyConfig,
    KeyConfigMismatch,
    frame,
    parse_nonce,
)


@functools.cache
def suite() -> Any:
    """The HPKE suite (pyhpke's `CipherSuite`). Only the ends seal and open requests (the
    enclave, the private proxy): the gateway's relay only reads frames, and never loads pyhpke."""
    hpke = optional.pyhpke()
    return hpke.CipherSuite.new(
        hpke.KEMId.DHKEM_X25519_HKDF_SHA256, hpke.KDFId.HKDF_SHA256, hpke.AEADId.AES256_GCM
    )


class ServerKey:
    """An enclave's HPKE key pair (the private half never leaves the enclave)."""

    def __init__(self, private: X25519PrivateKey, key_id: int = 0) -> None:
        self._private = optional.pyhpke().KEMKey.from_pyca_cryptography_key(private)
        self.key_id = key_id
        self.config = KeyConfig(key_id, private.public_key().public_bytes_raw())

    @staticmethod
    def generate(key_id: int = 0) -> ServerKey:
        return ServerKey(X25519PrivateKey.generate(), key_id)

    def open_request(self, enc: bytes, body: bytes) -> tuple[bytes, bytes]:
        """The request's plaintext and the secret its response is sealed with.

        Raises KeyConfigMismatch when the first frame does not open under this key (SPEC §5.4.2:
        422), EhbpError when the framing or the encapsulated key is malformed (400).
        """
        if len(enc) != ENC_LENGTH:
            raise EhbpError("the encapsulated key must be 32 bytes")
        reader = FrameReader()
        frames = reader.feed(body)
        reader.finish()
        try:
            context = suite().create_recipient_context(enc, self._private, info=REQUEST_INFO)
        except Exception as exc:  # pyhpke raises its own errors for a bad point
            raise EhbpError("the encapsulated key is not a valid X25519 point") from exc
        plain: list[bytes] = []
        for index, sealed in enumerate(frames):
            if not sealed:
                continue
            try:
                plain.append(context.open(sealed))
            except Exception as exc:
                if index == 0:
                    raise KeyConfigMismatch("the request is not sealed to this key") from exc
                raise EhbpError("a request frame failed authentication") from exc
        return b"".join(plain), context.export(EXPORT_LABEL, 32)


@dataclass(slots=True)
class SealedRequest:
    """A sealed request body, its encapsulated key (the header's value, as hex), and what the
    client keeps to open the response."""

    enc: bytes
    body: bytes
    secret: bytes = field(repr=False)

    @property
    def enc_hex(self) -> str:
        return self.enc.hex()

    def opener(self, nonce_hex: str) -> ResponseOpener:
        return ResponseOpener(self.secret, self.enc, parse_nonce(nonce_hex))


def seal_request(config: KeyConfig, plaintext: bytes) -> SealedRequest:
    """Seal `plaintext` to the server's key, in frames of SEAL_FRAME_BYTES."""
    public_key = X25519PublicKey.from_public_bytes(config.public_key)
    public = optional.pyhpke().KEMKey.from_pyca_cryptography_key(public_key)
    enc, context = suite().create_sender_context(public, info=REQUEST_INFO)
    parts = [
        frame(context.seal(plaintext[i : i + SEAL_FRAME_BYTES]))
        for i in range(0, len(plaintext), SEAL_FRAME_BYTES)
    ]
    return SealedRequest(enc, b"".join(parts), context.export(EXPORT_LABEL, 32))


def _response_keys(secret: bytes, enc: bytes, nonce: bytes) -> tuple[AESGCM, bytes]:
    """SPEC §4.4.1: prk = Extract(enc ‖ nonce, secret); key, base nonce = Expand(prk, ...)."""
    mac = hmac.HMAC(enc + nonce, hashes.SHA256())
    mac.update(secret)
    prk = mac.finalize()
    key = HKDFExpand(hashes.SHA256(), 32, b"key").derive(prk)
    base = HKDFExpand(hashes.SHA256(), 12, b"nonce").derive(prk)
    return AESGCM(key), base


def _chunk_nonce(base: bytes, seq: int) -> bytes:
    return base[:4] + (int.from_bytes(base[4:], "big") ^ seq).to_bytes(8, "big")


class ResponseSealer:
    """The server's half of a response: a fresh nonce, then each write sealed as one frame."""

    def __init__(self, secret: bytes, enc: bytes) -> None:
        self.nonce = os.urandom(RESPONSE_NONCE_LENGTH)
        self._aead, self._base = _response_keys(secret, enc, self.nonce)
        self._seq = 0

    @property
    def nonce_hex(self) -> str:
        return self.nonce.hex()

    def seal(self, plaintext: bytes) -> bytes:
        sealed = self._aead.encrypt(_chunk_nonce(self._base, self._seq), plaintext, None)
        self._seq += 1
        return frame(sealed)


class ResponseOpener:
    """The client's half: feed response bytes as they arrive, get authenticated plaintext."""

    def __init__(self, secret: bytes, enc: bytes, nonce: bytes) -> None:
        self._aead, self._base = _response_keys(secret, enc, nonce)
        self._reader = FrameReader()
        self._seq = 0

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        for sealed in self._reader.feed(data):
            if not sealed:
                continue
            try:
                out.append(self._aead.decrypt(_chunk_nonce(self._base, self._seq), sealed, None))
            except InvalidTag as exc:
                raise EhbpError("a response frame failed authentication") from exc
            self._seq += 1
        return b"".join(out)

    def finish(self) -> None:
        self._reader.finish()
