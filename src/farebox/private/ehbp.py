"""EHBP, the Encrypted HTTP Body Protocol (../shared/reference/private/ehbp-SPEC.md), both ends.

HPKE (RFC 9180, base mode) with X25519 / HKDF-SHA256 / AES-256-GCM seals a request body to the
enclave's key (info "ehbp request"); the response is sealed with AES-256-GCM under keys derived
from the request's HPKE context (OHTTP's schedule, SPEC §4.4), so only the party that sealed
the request can read the answer. Both bodies are frames: a 4-byte big-endian length, then that
many ciphertext bytes. This module is the wire (constants, key configs, frames); the gateway
uses only `FrameReader` (it counts frames, it cannot open them), so it never loads a crypto
library. The sealing and opening, which the private proxy and the simulator's enclave do, are
in private/ehbp_seal.py.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

KEYS_PATH = "/.well-known/hpke-keys"
KEYS_MEDIA_TYPE = "application/ohttp-keys"
ENCAPSULATED_KEY_HEADER = "Ehbp-Encapsulated-Key"
RESPONSE_NONCE_HEADER = "Ehbp-Response-Nonce"
PROBLEM_JSON = "application/problem+json"
KEY_CONFIG_PROBLEM = "urn:ietf:params:ehbp:error:key-config"

REQUEST_INFO = b"ehbp request"
EXPORT_LABEL = b"ehbp response"
KEM_X25519 = 0x0020
KDF_HKDF_SHA256 = 0x0001
AEAD_AES_256_GCM = 0x0002
ENC_LENGTH = 32
PUBLIC_KEY_LENGTH = 32
KEY_CONFIG_LENGTH = 41  # key_id(1) kem(2) public key(32) suites length(2) one suite(4)
RESPONSE_NONCE_LENGTH = 32  # max(Nn, Nk) for AES-256-GCM
TAG_LENGTH = 16
PREFIX_LENGTH = 4
SEAL_FRAME_BYTES = 64 * 1024  # plaintext per frame when sealing
MAX_FRAME_BYTES = 16 * 1024 * 1024  # a longer frame is refused before it is buffered


class EhbpError(Exception):
    """A malformed EHBP message (framing, header, key config): the exchange fails closed."""


class KeyConfigMismatch(EhbpError):
    """The request was not sealed to this server's key (a stale key after rotation: 422)."""


@dataclass(frozen=True, slots=True)
class KeyConfig:
    """One RFC 9458 key_config: the server's public key and its (single) suite."""

    key_id: int
    public_key: bytes

    def encode(self) -> bytes:
        return (
            struct.pack(">BH", self.key_id, KEM_X25519)
            + self.public_key
            + struct.pack(">HHH", 4, KDF_HKDF_SHA256, AEAD_AES_256_GCM)
        )

    @staticmethod
    def parse(data: bytes) -> KeyConfig:
        """The first key_config of an `application/ohttp-keys` body (SPEC §3.2)."""
        if len(data) < KEY_CONFIG_LENGTH:
            raise EhbpError(f"key config is {len(data)} bytes, expected {KEY_CONFIG_LENGTH}")
        key_id, kem = struct.unpack_from(">BH", data, 0)
        if kem != KEM_X25519:
            raise EhbpError(f"unsupported KEM 0x{kem:04x}")
        public_key = data[3 : 3 + PUBLIC_KEY_LENGTH]
        (suites_length,) = struct.unpack_from(">H", data, 35)
        if suites_length < 4 or suites_length % 4 or 37 + suites_length > len(data):
            raise EhbpError("malformed cipher suites in key config")
        kdf, aead = struct.unpack_from(">HH", data, 37)
        if (kdf, aead) != (KDF_HKDF_SHA256, AEAD_AES_256_GCM):
            raise EhbpError(f"unsupported suite KDF 0x{kdf:04x} AEAD 0x{aead:04x}")
        return KeyConfig(key_id, bytes(public_key))


def frame(ciphertext: bytes) -> bytes:
    return struct.pack(">I", len(ciphertext)) + ciphertext


def parse_nonce(value: str) -> bytes:
    try:
        nonce = bytes.fromhex(value.strip())
    except ValueError as exc:
        raise EhbpError("the response nonce is not hex") from exc
    if len(nonce) != RESPONSE_NONCE_LENGTH:
        raise EhbpError(f"the response nonce must be {RESPONSE_NONCE_LENGTH} bytes")
    return nonce


class FrameReader:
    """Splits an EHBP body into frames as bytes arrive, without opening them.

    Counts what a relay may know without any key: frames and their sizes (SPEC §7.2).
    """

    def __init__(self, max_frame: int = MAX_FRAME_BYTES) -> None:
        self._buffer = bytearray()
        self._max_frame = max_frame
        self.frames = 0  # non-empty frames seen
        self.sealed_bytes = 0  # ciphertext bytes in them (tags included)

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        out: list[bytes] = []
        buffer = self._buffer
        offset = 0
        while len(buffer) - offset >= PREFIX_LENGTH:
            (length,) = struct.unpack_from(">I", buffer, offset)
            if length > self._max_frame:
                raise EhbpError(f"an EHBP frame of {length} bytes is over the limit")
            if length and length < TAG_LENGTH:
                raise EhbpError("an EHBP frame is shorter than its authentication tag")
            end = offset + PREFIX_LENGTH + length
            if len(buffer) < end:
                break
            out.append(bytes(buffer[offset + PREFIX_LENGTH : end]))
            if length:
                self.frames += 1
                self.sealed_bytes += length
            offset = end
        del buffer[:offset]
        return out

    @property
    def plaintext_bytes(self) -> int:
        """What the frames carry once opened: the ciphertext less one tag per frame."""
        return self.sealed_bytes - TAG_LENGTH * self.frames

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def finish(self) -> None:
        if self._buffer:
            raise EhbpError("the EHBP body ends inside a frame")
